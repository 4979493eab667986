#include <unistd.h>

#include <cerrno>

#include "accept_errors.h"
#include "accept_loop.h"
#include "accept_queue.h"
#include "listen_socket.h"
#include "load_shedding.h"

namespace ntl {

void OnResume(uv_timer_t* timer);

// Returns 0, or the libuv error that kept the resume timer from starting (then polling goes on).
// `exhausted`: out of descriptors (EMFILE/ENFILE), so a connection JS releases may end the
// pause early (Acceptor::Resume), before the timer.
int Pause(AcceptLoop* loop, bool exhausted) {
  // Out of descriptors, or a pending connection that keeps failing the same way: it stays in
  // the backlog and is tried again when the timer fires. Not polling until then is what keeps
  // this from spinning; the timer starts first, since a pause nothing would end must not begin.
  uint64_t delay = loop->next_pause_ms;
  int err = uv_timer_start(&loop->resume_timer, OnResume, delay, 0);
  if (err != 0) return err;
  // uv_poll_stop returns 0 on every path (libuv asserts instead of failing).
  (void)uv_poll_stop(&loop->poll);
  loop->polling = false;
  loop->counters.pauses++;
  if (exhausted) loop->admission.paused() |= kPausedExhausted;
  loop->next_pause_ms = delay * 2 > loop->pause_max_ms ? loop->pause_max_ms : delay * 2;
  return 0;
}

// One look at the accept queue while paused at a limit: the connections beyond
// maxQueuedConnections are reset (native/load_shedding.h). False when the queue's length
// cannot be read here, so periodic checks would be pointless.
bool Shed(AcceptLoop* loop) {
  ShedRound round = ShedBeyond(loop->listen_fd, loop->max_queued);
  loop->counters.rejected_queued += round.shed;
  loop->counters.shedding_cpu_ns += round.cpu_ns;
  return !round.unknown_queue;
}

void OnShedCheck(uv_timer_t* timer) {
  auto* loop = static_cast<AcceptLoop*>(timer->data);
  if (loop->closing) return;
  if (loop->admission_paused_for == AdmissionReason::kNone) {
    // The pause ended without stopping the checks; uv_timer_stop cannot fail.
    (void)uv_timer_stop(&loop->shed_timer);
    return;
  }
  Shed(loop);
}

// At an admission pause, with maxQueuedConnections: sheds now, then every kShedCheckMs while
// the pause lasts (polling the listening socket instead would spin: it stays readable while
// anyone is queued). Each resume() that leaves the pause in place sheds too.
void StartShedding(AcceptLoop* loop) {
  if (!loop->shed_timer_initialized) return;
  if (!Shed(loop)) return;
  // Fails only for a handle that is closing, and then nothing is left to shed for.
  if (uv_timer_start(&loop->shed_timer, OnShedCheck, kShedCheckMs, kShedCheckMs) != 0) return;
}

void StopShedding(AcceptLoop* loop) {
  if (loop->shed_timer_initialized) (void)uv_timer_stop(&loop->shed_timer);
}

// Stops polling at an admission limit: the kernel's backlog holds the next clients (nobody is
// reset, unless maxQueuedConnections bounds how many may wait) until JS releases a connection
// and calls resume().
void PauseForAdmission(AcceptLoop* loop, AdmissionReason reason) {
  (void)uv_poll_stop(&loop->poll);
  loop->polling = false;
  loop->admission_paused_for = reason;
  loop->admission_paused_since_ns = uv_hrtime();
  loop->admission.paused() |= kPausedAdmission;
  loop->counters.admission_pauses++;
  StartShedding(loop);
}

uint64_t AdmissionPausedNs(const AcceptLoop* loop) {
  uint64_t total = loop->counters.admission_paused_ns;
  if (loop->admission_paused_for != AdmissionReason::kNone) total += uv_hrtime() - loop->admission_paused_since_ns;
  return total;
}

// After an accepted connection: true when the kernel says none is left, so the batch ends
// without the accept() that would return EAGAIN (native/accept_queue.h). `known_queued`
// counts the connections it last said were waiting: while some are, it is not asked again.
// Where it cannot say, the batch drains until EAGAIN as before.
bool QueueDrained(AcceptLoop* loop, size_t* known_queued) {
  if (*known_queued > 1) {
    --*known_queued;
    return false;
  }
  int queued = AcceptQueueLength(loop->listen_fd);
  *known_queued = queued > 0 ? static_cast<size_t>(queued) : 0;
  return queued == 0;
}

void OnReadable(uv_poll_t* handle, int status, int) {
  auto* loop = static_cast<AcceptLoop*>(handle->data);
  if (loop->closing) return;

  AcceptBatch attempt(loop->batch_limit, status < 0 ? -status : 0);
  AdmissionReason full = AdmissionReason::kNone;
  sockaddr_storage peer;
  // Connections the kernel said were queued and not accepted yet (QueueDrained).
  size_t known_queued = 0;
  while (attempt.Open()) {
    // At a limit nothing more is accepted: the rest wait in the backlog.
    full = loop->admission.Full();
    if (full != AdmissionReason::kNone) break;
    int fd = AcceptNonBlocking(loop->listen_fd, &peer);
    if (fd < 0) {
      if (!attempt.Failed(errno, loop->retry_streak)) break;
      continue;
    }
    attempt.Accepted(loop->retry_streak);
    int32_t address_slot = -1;
    Admitted admitted = loop->admission.Admit(peer, &address_slot);
    if (admitted != Admitted::kYes) {
      // Over the per-address limit, or a new address with the table full: closed before any
      // JS sees it.
      close(fd);
      if (admitted == Admitted::kOverLimit) loop->counters.rejected_per_address++;
      else loop->counters.rejected_address_table_full++;
      continue;
    }
    loop->batch.push_back(fd);
    loop->batch_address_slots.push_back(address_slot);
    if (loop->deliver_peers) loop->batch_peers.push_back(peer);
    if (QueueDrained(loop, &known_queued)) break;
  }
  attempt.Finish(!loop->batch.empty());
  if (attempt.drained()) loop->counters.empty_accepts++;
  for (int err : attempt.retried()) loop->counters.retries_by_errno[err]++;
  bool paused = attempt.paused();
  int pause_errno = attempt.pause_errno();
  int fatal_errno = attempt.fatal_errno();

  if (!loop->batch.empty()) {
    loop->counters.accepted += loop->batch.size();
    loop->counters.batches++;
    if (!paused) loop->next_pause_ms = loop->pause_min_ms;
  }
  uint64_t pause_delay = loop->next_pause_ms;
  if (full != AdmissionReason::kNone) PauseForAdmission(loop, full);
  if (paused) {
    int err = Pause(loop, pause_errno == EMFILE || pause_errno == ENFILE);
    // A back-off that cannot be timed: report and close, as for a fatal errno.
    if (err != 0) {
      paused = false;
      fatal_errno = -err;
    }
  }

  DeliverBatch(loop);
  for (int err : attempt.retried()) ReportEvent(loop, kEventRetry, err, 0);
  if (paused) ReportEvent(loop, kEventPause, pause_errno, pause_delay);
  // Unless the batch's callback already freed a slot and resumed.
  if (full != AdmissionReason::kNone && loop->admission_paused_for == full) {
    ReportEvent(loop, kEventBackpressure, static_cast<int>(full), 0);
  }
  if (fatal_errno != 0 && !loop->closing) {
    // The original re-raises here and its server stops; the listening socket goes first so
    // no client is accepted by a listener that is already failing.
    ReportEvent(loop, kEventFatal, fatal_errno, 0);
    BeginClose(loop);
  }
}

void OnResume(uv_timer_t* timer) {
  auto* loop = static_cast<AcceptLoop*>(timer->data);
  if (loop->closing) return;
  loop->admission.paused() &= ~kPausedExhausted;
  int err = uv_poll_start(&loop->poll, UV_READABLE, OnReadable);
  if (err != 0) {
    // Accepting cannot resume: the listener must learn that, as from a fatal accept() error.
    ReportEvent(loop, kEventFatal, -err, 0);
    BeginClose(loop);
    return;
  }
  loop->polling = true;
}

// Polls again after a pause JS ended; false (with the listener closed) when polling cannot start.
bool StartPolling(AcceptLoop* loop) {
  if (loop->polling) return true;
  int err = uv_poll_start(&loop->poll, UV_READABLE, OnReadable);
  if (err != 0) {
    ReportEvent(loop, kEventFatal, -err, 0);
    BeginClose(loop);
    return false;
  }
  loop->polling = true;
  return true;
}

}  // namespace ntl
