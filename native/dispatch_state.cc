// The thread driver's queues (dispatch_state.h): how the accept thread deals a batch to the
// workers' queues and what room they and the admission limits leave it, and the queues' side:
// joining, leaving, retiring, the end of a batch, and the books and address slots they keep.
#include "dispatch_state.h"

#include <unistd.h>

#include <cstdint>

#include "accept_thread.h"

namespace ntl {
namespace {

// Queue load for the least-active choice: what the worker holds, what waits for it, what it is
// being handed. Called with shared.mutex and queue.mutex held.
double LoadOf(QueueShared& queue) {
  return queue.published[kActive] + static_cast<double>(queue.pending.size() + queue.delivering);
}

// Descriptors a queue can still take below its high-water mark. Called with queue.mutex held.
size_t QueueRoom(const DispatchShared& shared, const QueueShared& queue) {
  size_t queued = queue.pending.size() + queue.delivering;
  return queued >= shared.queue_limit ? 0 : shared.queue_limit - queued;
}

// The queue no longer holds a connection counted in `slot`. Called with queue.mutex held.
bool ForgetHeld(QueueShared& queue, int32_t slot) {
  auto held = queue.held_addresses.find(slot);
  if (held == queue.held_addresses.end()) return false;
  if (--held->second == 0) queue.held_addresses.erase(held);
  return true;
}

// Counts out the address of every connection in `slots` the queue held. Called with queue.mutex
// held (the address table's lock is a leaf).
void ReleaseHeld(DispatchShared& shared, QueueShared& queue, const std::vector<int32_t>& slots) {
  for (int32_t slot : slots) {
    if (slot >= 0 && ForgetHeld(queue, slot)) (void)shared.addresses.Release(slot);
  }
}

}  // namespace

// What every open queue can still take, together. Called with shared.mutex held. Only the
// accept thread adds to the queues, so this can only grow before the batch it allows is
// dispatched (a queue that leaves meanwhile takes nothing more, and Dispatch sends its share
// to the others, at most one batch over their marks).
size_t QueuesRoom(DispatchShared& shared) {
  size_t room = 0;
  for (const auto& queue : shared.queues) {
    std::lock_guard<std::mutex> queue_lock(queue->mutex);
    room += QueueRoom(shared, *queue);
  }
  return room;
}

// Hands a batch to the queues with the fewest active connections, ties round-robin, skipping
// queues at their high-water mark while any other has room; one wake-up per queue that got
// anything. With no queue (every worker left between poll() and now) the batch stays the
// accept thread's, stranded, until a queue joins: false then.
bool Dispatch(DispatchShared& shared, std::vector<AcceptedFd>& batch) {
  std::lock_guard<std::mutex> lock(shared.mutex);
  size_t count = shared.queues.size();
  if (count == 0) {
    shared.stranded = batch.size();
    return false;
  }
  shared.stranded = 0;
  std::vector<double> load(count);
  std::vector<size_t> room(count);
  std::vector<std::vector<AcceptedFd>> chosen(count);
  for (size_t i = 0; i < count; i++) {
    std::lock_guard<std::mutex> queue_lock(shared.queues[i]->mutex);
    load[i] = LoadOf(*shared.queues[i]);
    room[i] = QueueRoom(shared, *shared.queues[i]);
  }
  for (const AcceptedFd& accepted : batch) {
    size_t best = shared.cursor % count;
    for (size_t step = 1; step < count; step++) {
      size_t candidate = (shared.cursor + step) % count;
      // A queue with room beats one at its mark; among equals, the least loaded.
      bool better_room = room[candidate] > 0 && room[best] == 0;
      bool same_room = (room[candidate] > 0) == (room[best] > 0);
      if (better_room || (same_room && load[candidate] < load[best])) best = candidate;
    }
    chosen[best].push_back(accepted);
    load[best] += 1;
    if (room[best] > 0) room[best]--;
    shared.cursor = best + 1;
  }
  for (size_t i = 0; i < count; i++) {
    if (chosen[i].empty()) continue;
    QueueShared& queue = *shared.queues[i];
    std::lock_guard<std::mutex> queue_lock(queue.mutex);
    // Open is guaranteed: a queue leaves the list (under shared.mutex) before it closes.
    queue.pending.insert(queue.pending.end(), chosen[i].begin(), chosen[i].end());
    for (const AcceptedFd& accepted : chosen[i]) {
      if (accepted.address_slot >= 0) queue.held_addresses[accepted.address_slot]++;
    }
    queue.dispatched += chosen[i].size();
    uv_async_send(queue.wake);
  }
  batch.clear();
  return true;
}

// How many more connections the admission limits let the accept thread take now (SIZE_MAX: no
// limit). Called with shared.mutex held. Only the accept thread adds connections, so the room
// can only grow between this look and the accepts it allows.
size_t AdmissionRoom(DispatchShared& shared) {
  if (shared.max_connections == 0 && shared.max_pending_handshakes == 0) return SIZE_MAX;
  double active = static_cast<double>(shared.stranded);
  double in_setup = active;
  for (const auto& queue : shared.members) {
    std::lock_guard<std::mutex> queue_lock(queue->mutex);
    // Queued and being handed over: not yet in the worker's books, but taken on all the same.
    double in_queue = static_cast<double>(queue->pending.size() + queue->delivering);
    active += queue->published[kActive] + in_queue;
    in_setup += queue->published[kInSetup] + in_queue;
  }
  size_t room = SIZE_MAX;
  auto limit = [&room](int64_t max, double used) {
    if (max == 0) return;
    double left = static_cast<double>(max) - used;
    size_t here = left <= 0 ? 0 : static_cast<size_t>(left);
    if (here < room) room = here;
  };
  limit(shared.max_connections, active);
  limit(shared.max_pending_handshakes, in_setup);
  return room;
}

void JoinQueue(DispatchShared& shared, const std::shared_ptr<QueueShared>& queue) {
  {
    std::lock_guard<std::mutex> lock(shared.mutex);
    shared.queues.push_back(queue);
    shared.members.push_back(queue);
  }
  WakeAcceptThread(shared);
}

void LeaveQueue(DispatchShared& shared, const std::shared_ptr<QueueShared>& queue) {
  std::vector<AcceptedFd> orphans;
  {
    std::lock_guard<std::mutex> lock(shared.mutex);
    for (auto it = shared.queues.begin(); it != shared.queues.end(); ++it) {
      if (*it == queue) {
        shared.queues.erase(it);
        break;
      }
    }
    std::lock_guard<std::mutex> queue_lock(queue->mutex);
    if (!queue->open) return;
    queue->open = false;
    queue->wake = nullptr;
    orphans.swap(queue->pending);
    queue->closed_here += orphans.size();
    std::vector<int32_t> slots;
    for (const AcceptedFd& orphan : orphans) slots.push_back(orphan.address_slot);
    ReleaseHeld(shared, *queue, slots);
  }
  // Off every list and no longer open: no push can reach these any more.
  for (const AcceptedFd& orphan : orphans) close(orphan.fd);
  if (orphans.empty()) return;
  std::lock_guard<std::mutex> lock(shared.mutex);
  shared.releases++;
  shared.changed.notify_all();  // room under an admission limit (or descriptors) again
}

void RetireQueue(DispatchShared& shared, const std::shared_ptr<QueueShared>& queue) {
  LeaveQueue(shared, queue);
  std::lock_guard<std::mutex> lock(shared.mutex);
  bool member = false;
  for (auto it = shared.members.begin(); it != shared.members.end(); ++it) {
    if (*it == queue) {
      shared.members.erase(it);
      member = true;
      break;
    }
  }
  if (!member) return;
  std::lock_guard<std::mutex> queue_lock(queue->mutex);
  SlotTotals& totals = shared.retired[queue->slot];
  totals.dispatched += queue->dispatched;
  totals.closed_here += queue->closed_here;
  Published last = queue->has_staged ? queue->staged : queue->published;
  last[kClosed] += last[kActive];
  last[kActive] = 0;
  // Setups its death cut short end as aborted, as close() counts them on one thread.
  last[kHandshakesAborted] += last[kInSetup];
  last[kInSetup] = 0;
  for (size_t i = 0; i < kPublishedCount; i++) totals.published[i] += last[i];
  // Its worker's connections ended with it: their addresses are counted out.
  for (const auto& held : queue->held_addresses) {
    for (int64_t i = 0; i < held.second; i++) (void)shared.addresses.Release(held.first);
  }
  queue->held_addresses.clear();
  shared.releases++;  // the worker's handles closed its connections
  shared.changed.notify_all();  // its connections no longer count against an admission limit
}

void FinishBatch(DispatchShared& shared, QueueShared& queue, uint64_t closed, const std::vector<int32_t>& closed_slots) {
  std::lock_guard<std::mutex> lock(shared.mutex);
  std::lock_guard<std::mutex> queue_lock(queue.mutex);
  queue.delivering = 0;
  queue.closed_here += closed;
  ReleaseHeld(shared, queue, closed_slots);
  if (closed > 0) shared.releases++;
  if (queue.has_staged) {
    queue.published = queue.staged;
    queue.has_staged = false;
  }
  shared.changed.notify_all();  // an accept thread paused at an admission limit looks again
}

bool ReleaseHeldAddress(DispatchShared& shared, QueueShared& queue, int32_t slot) {
  std::lock_guard<std::mutex> queue_lock(queue.mutex);
  if (!ForgetHeld(queue, slot)) return false;
  return shared.addresses.Release(slot);
}

int32_t AdmitClientAddress(DispatchShared& shared, QueueShared& queue, const AddressKey& key) {
  if (shared.max_connections_per_address == 0) return kAddressNotCounted;
  std::lock_guard<std::mutex> queue_lock(queue.mutex);
  int32_t slot = shared.addresses.Admit(key);
  if (slot >= 0) queue.held_addresses[slot]++;
  return slot;
}

void PublishCounters(DispatchShared& shared, QueueShared& queue, const Published& values) {
  std::lock_guard<std::mutex> lock(shared.mutex);
  std::lock_guard<std::mutex> queue_lock(queue.mutex);
  const Published& before = queue.has_staged ? queue.staged : queue.published;
  if (values[kClosed] > before[kClosed]) shared.releases++;
  if (queue.delivering > 0) {
    queue.staged = values;
    queue.has_staged = true;
  } else {
    queue.published = values;
  }
  shared.changed.notify_all();  // an accept thread paused at an admission limit looks again
}

}  // namespace ntl
