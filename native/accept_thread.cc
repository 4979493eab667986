// The accept thread of the thread driver (dispatch_state.h has the shared state and who owns
// which descriptor): waits for work (a queue with room, admission room, a readable listening
// socket), accepts a batch with the core's errno policy (native/accept_errors.h), counts each
// peer in the per-address table, hands the batch to the queues (native/dispatch_state.cc), and
// reports retries, pauses and a fatal errno to the main thread as events.
#include "accept_thread.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>

#include "accept_options.h"
#include "listen_socket.h"
#include "load_shedding.h"
#include "platform.h"

namespace ntl {
namespace {

// A main thread that is blocked must not make the accept thread buffer without bound: retry
// events beyond this are counted, not queued (a pause or a fatal error always is).
constexpr size_t kEventQueueLimit = 256;

// Called with shared.mutex held.
void PushEvent(DispatchShared& shared, int32_t kind, int err, uint64_t delay_ms) {
  if (kind == kEventRetry && shared.events.size() >= kEventQueueLimit) {
    shared.events_dropped++;
    return;
  }
  shared.events.push_back(DispatchEvent{kind, err, delay_ms});
  if (shared.main_wake != nullptr) uv_async_send(shared.main_wake);
}

// Waits, with shared.mutex held through `lock`, until the admission limits leave room again or
// the dispatcher stops. With maxQueuedConnections it sheds meanwhile: now and every
// kShedCheckMs, outside the mutex (accept and close on a full queue must not hold up workers
// publishing their books), counting what it shed listener-wide. The listening fd is safe to use
// unlocked: only Stop() closes it, after this thread has joined. Where the queue's length cannot
// be read (native/load_shedding.h) nothing is shed, and the wait is the plain one.
void WaitForAdmissionRoom(DispatchShared& shared, std::unique_lock<std::mutex>& lock) {
  auto room_or_stop = [&] { return shared.stopping || AdmissionRoom(shared) > 0; };
  bool shedding = shared.max_queued >= 0;
  while (shedding && !room_or_stop()) {
    lock.unlock();
    ShedRound round = ShedBeyond(shared.listen_fd, shared.max_queued);
    lock.lock();
    shared.books.rejected_queued += round.shed;
    shared.books.shedding_cpu_ns += round.cpu_ns;
    if (round.unknown_queue) shedding = false;
    // wait_until on the system clock, not wait_for: see the pause in AcceptThreadMain.
    shared.changed.wait_until(lock, std::chrono::system_clock::now() + std::chrono::milliseconds(kShedCheckMs),
                              room_or_stop);
  }
  shared.changed.wait(lock, room_or_stop);
}

void DrainWakeFd(int fd) {
  char buffer[64];
  while (read(fd, buffer, sizeof buffer) > 0) {
  }
}

// Waits until there is a queue to accept for (the backlog holds connections meanwhile) or the
// dispatcher stops; then, unless a stranded batch waits for that queue, until the listening
// socket is readable. False: stop. A poll() that fails (other than EINTR: ENOMEM, say) leaves
// its errno in `poll_errno`, for the caller to report and back off: looked at again at once,
// the same failure would spin.
bool WaitForWork(DispatchShared& shared, bool stranded, int* poll_errno) {
  *poll_errno = 0;
  {
    std::unique_lock<std::mutex> lock(shared.mutex);
    shared.changed.wait(lock, [&] { return shared.stopping || !shared.queues.empty(); });
    if (shared.stopping) return false;
    if (!stranded && QueuesRoom(shared) == 0) {
      // Every queue at its high-water mark: the backlog holds the clients until a worker takes
      // its batch (FinishBatch), a queue leaves or joins, or the dispatcher stops.
      shared.queue_full_pauses++;
      shared.changed.wait(lock, [&] { return shared.stopping || shared.queues.empty() || QueuesRoom(shared) > 0; });
      if (shared.stopping) return false;
      if (shared.queues.empty()) return true;  // looked at again from the top
    }
    if (!stranded && AdmissionRoom(shared) == 0) {
      shared.books.admission_pauses++;
      WaitForAdmissionRoom(shared, lock);
      if (shared.stopping) return false;
    }
  }
  if (stranded) return true;
  struct pollfd fds[2] = {{shared.listen_fd, POLLIN, 0}, {shared.wake_fd, POLLIN, 0}};
  int ready = poll(fds, 2, -1);
  if (ready < 0) {
    if (errno != EINTR) *poll_errno = errno;
    return true;  // EINTR: look again
  }
  if (fds[1].revents != 0) DrainWakeFd(shared.wake_fd);
  return true;
}

// A pause of `delay_ms` before the next look (the listening socket stays unpolled meanwhile);
// stopping ends it, and so does a descriptor a worker releases when the pause is for lack of
// them (`exhausted`: since `releases_before`), as a released connection resumes the
// single-thread acceptor.
void BackOff(DispatchShared& shared, uint64_t delay_ms, bool exhausted, uint64_t releases_before) {
  std::unique_lock<std::mutex> lock(shared.mutex);
  // wait_until on the system clock, not wait_for: libstdc++ turns a steady-clock wait into
  // pthread_cond_clockwait, which would make the prebuild need glibc 2.30 (README: 2.28).
  shared.changed.wait_until(lock, std::chrono::system_clock::now() + std::chrono::milliseconds(delay_ms), [&] {
    return shared.stopping || (exhausted && shared.releases != releases_before);
  });
}

uint64_t NextPause(const DispatchShared& shared, uint64_t delay_ms) {
  return delay_ms * 2 > shared.pause_max_ms ? shared.pause_max_ms : delay_ms * 2;
}

void AcceptThreadMain(const std::shared_ptr<DispatchShared>& owner) {
  DispatchShared& shared = *owner;
  RetryStreak streak;
  std::vector<AcceptedFd> batch;
  uint64_t next_pause_ms = shared.pause_min_ms;
  batch.reserve(shared.batch_limit);
  int poll_errno = 0;
  while (WaitForWork(shared, !batch.empty(), &poll_errno)) {
    if (poll_errno != 0) {
      // Reported as a pause, like accept()'s own failures, and backed off the same way.
      uint64_t delay = next_pause_ms;
      {
        std::lock_guard<std::mutex> lock(shared.mutex);
        shared.books.pauses++;
        PushEvent(shared, kEventPause, poll_errno, delay);
      }
      next_pause_ms = NextPause(shared, delay);
      BackOff(shared, delay, false, 0);
      continue;
    }
    if (!batch.empty()) {
      Dispatch(shared, batch);
      continue;
    }
    size_t room = 0;
    uint64_t releases_before = 0;
    {
      std::lock_guard<std::mutex> lock(shared.mutex);
      room = std::min(AdmissionRoom(shared), QueuesRoom(shared));
      releases_before = shared.releases;
    }
    AcceptBatch attempt(shared.batch_limit);
    const bool count_peers = shared.CountsPeersAtAccept();
    uint64_t rejected = 0;
    uint64_t rejected_table_full = 0;
    sockaddr_storage peer;
    while (attempt.Open() && batch.size() < room) {
      int fd = AcceptNonBlocking(shared.listen_fd, count_peers ? &peer : nullptr);
      if (fd < 0) {
        if (!attempt.Failed(errno, streak)) break;
        continue;
      }
      attempt.Accepted(streak);
      const int32_t address_slot = count_peers ? shared.addresses.AdmitPeer(peer, shared.ipv6_prefix) : kAddressNotCounted;
      if (address_slot == kAddressOverLimit || address_slot == kAddressTableFull) {
        // Over maxConnectionsPerAddress, or a new address with the table full: closed here,
        // before any worker or JS sees it.
        close(fd);
        if (address_slot == kAddressOverLimit) rejected++;
        else rejected_table_full++;
        continue;
      }
      batch.push_back(AcceptedFd{fd, address_slot});
    }
    attempt.Finish(!batch.empty());
    const std::vector<int>& retried = attempt.retried();
    bool paused = attempt.paused();
    int pause_errno = attempt.pause_errno();
    int fatal_errno = attempt.fatal_errno();
    if (!batch.empty() && !paused) next_pause_ms = shared.pause_min_ms;
    uint64_t pause_delay = next_pause_ms;
    {
      std::lock_guard<std::mutex> lock(shared.mutex);
      if (!batch.empty()) {
        shared.books.accepted += batch.size();
        shared.books.batches++;
      }
      shared.books.rejected_per_address += rejected;
      shared.books.rejected_address_table_full += rejected_table_full;
      for (int err : retried) {
        shared.books.retries_by_errno[err]++;
        PushEvent(shared, kEventRetry, err, 0);
      }
      if (paused) {
        shared.books.pauses++;
        PushEvent(shared, kEventPause, pause_errno, pause_delay);
      }
      if (fatal_errno != 0) PushEvent(shared, kEventFatal, fatal_errno, 0);
    }
    if (!batch.empty()) Dispatch(shared, batch);
    if (fatal_errno != 0) break;  // the main thread closes the listener on the fatal event
    if (paused) {
      next_pause_ms = NextPause(shared, pause_delay);
      BackOff(shared, pause_delay, pause_errno == EMFILE || pause_errno == ENFILE, releases_before);
    }
  }
  // Stopped (or failed) with a batch no worker took: closed here, counted as dropped.
  if (!batch.empty()) {
    for (const AcceptedFd& accepted : batch) {
      close(accepted.fd);
      // Never handed to a queue: counted out here.
      if (accepted.address_slot >= 0) (void)shared.addresses.Release(accepted.address_slot);
    }
    std::lock_guard<std::mutex> lock(shared.mutex);
    shared.dropped += batch.size();
    shared.stranded = 0;
  }
}

void AcceptThreadEntry(void* arg) {
  auto* owner = static_cast<std::shared_ptr<DispatchShared>*>(arg);
  AcceptThreadMain(*owner);
  delete owner;
}

}  // namespace

int StartAcceptThread(const std::shared_ptr<DispatchShared>& shared, const char** failed_call) {
  // The wake pipe, both ends non-blocking (a full pipe must not block a waker; the reader
  // drains it) and close-on-exec like every descriptor the addon opens (platform.h: pipe2, or
  // pipe then fcntl). Nothing is left open when it fails.
  int pipe_fds[2];
  *failed_call = kLinuxCalls ? "pipe2" : "pipe";
  int pipe_err = OpenPipe(pipe_fds);
  if (pipe_err != 0) return pipe_err;
  *failed_call = "pthread_create";
  shared->wake_fd = pipe_fds[0];
  shared->wake_write_fd = pipe_fds[1];
  // libuv's thread (Node exports it) rather than std::thread, whose instantiation for our types
  // the addon would export (test/native_build.test.ts), or pthread_create, whose symbol
  // version would make the prebuild need glibc 2.34 (the README promises 2.28).
  auto* arg = new std::shared_ptr<DispatchShared>(shared);
  int err = uv_thread_create(&shared->thread, AcceptThreadEntry, arg);
  if (err != 0) {
    err = -err;  // libuv's codes are -errno
    delete arg;
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    shared->wake_fd = shared->wake_write_fd = -1;
    return err;
  }
  shared->thread_started = true;
  return 0;
}

void WakeAcceptThread(DispatchShared& shared) {
  shared.changed.notify_all();
  if (shared.wake_write_fd >= 0) {
    char byte = 1;
    // A full pipe already wakes the thread; nothing to do on EAGAIN.
    (void)!write(shared.wake_write_fd, &byte, 1);
  }
}

void StopAcceptThread(DispatchShared& shared) {
  {
    std::lock_guard<std::mutex> lock(shared.mutex);
    shared.stopping = true;
    shared.main_wake = nullptr;
  }
  WakeAcceptThread(shared);
  if (shared.thread_started) {
    (void)uv_thread_join(&shared.thread);
    shared.thread_started = false;
  }
  // The thread is gone: nothing polls these any more.
  if (shared.listen_fd >= 0) close(shared.listen_fd);
  if (shared.wake_fd >= 0) close(shared.wake_fd);
  if (shared.wake_write_fd >= 0) close(shared.wake_write_fd);
  shared.listen_fd = shared.wake_fd = shared.wake_write_fd = -1;
}

}  // namespace ntl
