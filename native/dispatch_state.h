// What the accept thread and the worker threads share: the listening socket accepted on a
// thread of the addon's own, and one queue of accepted descriptors per worker thread.
//
// Descriptor ownership, written down once:
//  - the listening fd is the DispatchShared's from a successful `new Dispatcher()` until
//    Stop() closes it (on the thread that calls Stop(), after the accept thread has joined).
//  - an accepted fd belongs to the accept thread from accept() until Dispatch() pushes it onto
//    a queue's `pending`, under the locks; from then on to that queue. A batch with no queue
//    to go to (every worker left between poll() and dispatch) stays the accept thread's,
//    stranded, until a queue joins; if the dispatcher stops first it is closed and counted in
//    `dropped`.
//  - a queued fd belongs to its queue until the worker's wake-up callback moves it into its
//    `delivering` batch; from there the batch slot protocol of native/acceptor.h decides, fd
//    by fd, whether a socket's handle took it or the queue closes it (counted in closed_here).
//  - a queue that closes (JS close(), the worker exiting or being terminated) closes every fd
//    still pending, under its lock, and counts it in closed_here: no later push can reach it,
//    because it leaves the dispatcher's list under the same lock the accept thread pushes with.
//
// maxConnectionsPerAddress (native/address_counts.h): each accepted fd travels with the slot
// its peer's address is counted in. Whoever closes an fd no socket took counts its address out
// with it; a queue records the slots of every connection handed to it (`held_addresses`), so
// its JS can count one out only once, and its retirement counts out whatever its worker held.
#pragma once

#include <uv.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "accept_books.h"
#include "accept_errors.h"
#include "address_counts.h"

namespace ntl {

// The books a worker publishes (src/workers/worker_counters.ts keeps the same order).
enum PublishedCounter : size_t {
  kActive = 0,
  kClosed,
  kHandshakesCompleted,
  kHandshakesFailed,
  kHandshakesTimedOut,
  kHandshakesAborted,
  kSniCredential,
  kPrimaryCredential,
  kHandlerErrors,
  kIdleTimeouts,
  kInSetup,  // connections still in their setup (TLS handshake): what maxPendingHandshakes counts
  kProxyInvalid,    // PROXY protocol headers refused as malformed
  kProxyUntrusted,  // PROXY protocol connections from peers not in trustedProxies
  kRejectedPerAddress,  // closed after their PROXY header: its client at maxConnectionsPerAddress
  kRejectedAddressTableFull,  // ... or a new client with the per-address table full
  kProxyHealthChecks,         // a trusted proxy's health checks: a PROXY header, then a close
  kPublishedCount,
};
using Published = std::array<double, kPublishedCount>;

// A worker's queue holds at most this many batches (DispatchShared::queue_limit).
constexpr size_t kQueueBatches = 4;

// An accepted descriptor on its way to a worker, with the per-address slot it is counted in
// (kAddressNotCounted when the accept thread does not count addresses).
struct AcceptedFd {
  int fd;
  int32_t address_slot;
};

// One worker's queue. Everything but `wake` and `env`-side fields is guarded by `mutex`.
struct QueueShared {
  int slot = 0;
  std::mutex mutex;
  std::vector<AcceptedFd> pending;
  // Per-address slot -> connections of this queue's worker counted in it (see the top).
  std::unordered_map<int32_t, int64_t> held_addresses;
  bool open = true;
  uv_async_t* wake = nullptr;  // the worker's; valid while open
  size_t delivering = 0;       // fds in the batch the worker's callback is handing to JS
  uint64_t dispatched = 0;     // fds pushed onto this queue
  uint64_t closed_here = 0;    // fds this queue closed itself (never taken by a socket)
  Published published{};
  Published staged{};
  bool has_staged = false;  // published during a batch: made visible when the batch ends
};

// Per worker slot: the sum of every queue that has served it and left.
struct SlotTotals {
  uint64_t dispatched = 0;
  uint64_t closed_here = 0;
  Published published{};
};

struct DispatchEvent {
  int32_t kind;
  int32_t err;
  uint64_t delay_ms;
};

struct DispatchShared {
  int id = 0;
  int listen_fd = -1;
  // A pipe: the accept thread polls its read end beside the listening socket; joining,
  // leaving and stopping write a byte to its write end.
  int wake_fd = -1;
  int wake_write_fd = -1;

  size_t batch_limit = 128;
  // The high-water mark of each worker's queue: descriptors queued for it or being handed to
  // it (pending + delivering), kQueueBatches batches. With every queue at its mark (their
  // workers' loops stalled) the accept thread stops accepting, and the kernel's backlog holds
  // the next clients, as the single-thread acceptor's own loop does when it is busy: accepted
  // descriptors never pile up until the process runs out of them. Read-only after start.
  size_t queue_limit = kQueueBatches * 128;
  uint64_t queue_full_pauses = 0;  // times the accept thread stopped with every queue at its mark
  uint64_t pause_min_ms = 5;
  uint64_t pause_max_ms = 1000;
  // Admission limits for the listener as a whole (0: none). The accept thread stops polling
  // the listening socket while the workers' published books (plus what is queued for them)
  // are at a limit; every publish wakes it to look again (the backlog holds clients meanwhile).
  int64_t max_connections = 0;
  int64_t max_pending_handshakes = 0;
  // maxQueuedConnections (-1: none; set before the accept thread starts, read-only after):
  // while paused at an admission limit, the accept thread resets the connections queued in
  // the kernel beyond it (native/load_shedding.h), and counts them and their CPU below.
  int64_t max_queued = -1;
  // maxConnectionsPerAddress for the listener as a whole (0: none). Set before the accept
  // thread starts, read-only after. The accept thread counts accept()'s peer unless the
  // connections start with a PROXY header, whose client the workers count instead.
  int64_t max_connections_per_address = 0;
  int ipv6_prefix = kDefaultIPv6Prefix;  // perAddressIPv6Prefix: what an IPv6 peer's key keeps
  bool per_address_from_header = false;
  AddressCounts addresses;  // its own lock; configured with the limit, before the thread starts
  bool CountsPeersAtAccept() const { return max_connections_per_address > 0 && !per_address_from_header; }

  std::mutex mutex;  // guards everything below; taken before any QueueShared::mutex
  std::condition_variable changed;
  bool stopping = false;
  std::vector<std::shared_ptr<QueueShared>> queues;   // taking descriptors now
  std::vector<std::shared_ptr<QueueShared>> members;  // on the books: joined, not yet retired
  size_t cursor = 0;
  std::map<int, SlotTotals> retired;
  // What the accept thread accepted, retried, paused for and rejected, as the single-thread
  // acceptor keeps it (native/accept_books.h).
  AcceptBooks books;
  uint64_t dropped = 0;
  // Bumped whenever a worker's books show descriptors closed (or a queue closed some): a
  // pause for lack of descriptors (EMFILE/ENFILE) ends then, not when its delay runs out.
  uint64_t releases = 0;
  size_t stranded = 0;  // accepted, held by the accept thread until a worker's queue joins
  std::vector<DispatchEvent> events;
  uint64_t events_dropped = 0;
  uv_async_t* main_wake = nullptr;  // the main thread's; valid until Stop()

  uv_thread_t thread{};
  bool thread_started = false;
};

// What the accept thread (native/accept_thread.cc) asks of the queues (dispatch_state.cc).
// Deals `batch` out to the queues (it is left empty); false, with the batch left stranded, when
// no queue takes descriptors. Takes shared.mutex.
bool Dispatch(DispatchShared& shared, std::vector<AcceptedFd>& batch);
// What every open queue can still take below its high-water mark. Called with shared.mutex held.
size_t QueuesRoom(DispatchShared& shared);
// Connections the admission limits still allow (SIZE_MAX: none set). Called with shared.mutex held.
size_t AdmissionRoom(DispatchShared& shared);

// A queue joins the dispatcher (takes descriptors and is on the books).
void JoinQueue(DispatchShared& shared, const std::shared_ptr<QueueShared>& queue);
// It takes no more descriptors; every fd still pending is closed and counted. Idempotent.
void LeaveQueue(DispatchShared& shared, const std::shared_ptr<QueueShared>& queue);
// Its worker has ended: its books fold into the slot's totals, every connection it still
// counted active counted closed (the worker's handles closed them). Leaves first. Idempotent.
void RetireQueue(DispatchShared& shared, const std::shared_ptr<QueueShared>& queue);
// After a batch: `closed` of its fds were closed by the queue (their address slots in
// `closed_slots`); what JS published meanwhile becomes visible in the same step, so the books
// never count a descriptor twice or not at all.
void FinishBatch(DispatchShared& shared, QueueShared& queue, uint64_t closed, const std::vector<int32_t>& closed_slots);
// The worker's JS released a connection counted in `slot`: false (nothing changed) when the
// queue holds no connection there (a slot given twice, or never given).
bool ReleaseHeldAddress(DispatchShared& shared, QueueShared& queue, int32_t slot);
// With proxyProtocol: counts the client a PROXY header named, for the worker of `queue`. Its
// slot, kAddressOverLimit or kAddressTableFull (to be closed), or kAddressNotCounted (no limit).
int32_t AdmitClientAddress(DispatchShared& shared, QueueShared& queue, const AddressKey& key);
// The worker's books (see PublishedCounter); staged while a batch is being handed over.
void PublishCounters(DispatchShared& shared, QueueShared& queue, const Published& values);

}  // namespace ntl
