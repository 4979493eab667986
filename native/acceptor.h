// The accept loop: polls a listening socket on the owning thread's libuv loop, accepts in
// batches and hands each batch of descriptors to JS in one MakeCallback.
//
// Descriptor ownership, written down once:
//  - the listening fd stays the caller's until `new Acceptor()` returns: a constructor that
//    throws (a bad argument, or uv_poll_init failing, e.g. UV_EEXIST because this thread's
//    loop already watches the fd) has not taken it and never closes it. From a successful
//    construction it belongs to the AcceptLoop until Close()/the cleanup hook closes it,
//    with one way back: a start() that fails closes the acceptor and hands the fd back to
//    the caller, still open.
//  - an accepted fd belongs to the AcceptLoop from accept() until JS takes it. Each of the
//    batch's slots (the first `count` of the one Int32Array the loop hands over every time)
//    says who owns its descriptor when the callback returns, and only the slot says it: no
//    descriptor number is ever looked up to guess (src/accept/batch_slots.ts sets them):
//      the fd itself: untouched, still ours, closed here;
//      -1    taken: JS is wrapping it, and no libuv handle has it yet (JS marks the slot
//            settled the instant one does, before anything else runs). Closed here: the
//            callback was cut short (a worker terminated while wrapping) or JS broke off;
//      -2    settled: a libuv handle owns it (closing a socket that failed later is that
//            handle's job), or JS gave it away; never touched here;
//      -3    returned: JS could not wrap it (opening a handle on it failed, or an adopter
//            threw before a handle had it) and gives it back. Closed here;
//      anything else: JS broke the protocol; treated as untouched (closed here).
//    What is closed is always the descriptor this loop accepted for the slot, never the
//    number JS left in it. The slots are read from the array value handed to the callback,
//    kept alive for the whole batch: a close() from inside the callback (a handler, an
//    `accept` subscriber) releases the loop's JS values only once the batch has returned
//    (AcceptLoop::release_deferred). Should JS detach the array's buffer (transfer it), the
//    slots are unreadable and the batch's descriptors are left open, never closed: which of
//    them a handle owns is unknown, and closing a number twice is worse than leaking it.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "accept_books.h"
#include "accept_errors.h"
#include "addon.h"
#include "admission.h"

namespace ntl {

class Acceptor;

// The books of both drivers (native/accept_books.h), and the loop driver's own.
struct AcceptCounters : AcceptBooks {
  // accept() calls that found the queue empty (EAGAIN): what reading the queue's length saves.
  uint64_t empty_accepts = 0;
  // Nanoseconds accepting was paused at an admission limit (native/admission.h).
  uint64_t admission_paused_ns = 0;
};

// Lives on the heap apart from the JS object, because libuv handles outlive it: uv_close()
// completes on a later loop turn, possibly after the JS object was collected. Registered with
// its environment's Addon (native/addon.h) until freed, when its last handle has closed.
struct AcceptLoop final : public EnvResource {
  // BeginClose(), with no JS call.
  void CloseAtTeardown() override;

  uv_poll_t poll;
  uv_timer_t resume_timer;
  // While paused at an admission limit with maxQueuedConnections set: checks the accept queue.
  uv_timer_t shed_timer;
  int listen_fd = -1;
  // Which handles uv_*_init accepted: only those are ever started or uv_close()d, and the
  // struct is freed when the last of them has finished closing.
  bool poll_initialized = false;
  bool timer_initialized = false;
  bool shed_timer_initialized = false;
  int handles_open = 0;
  bool closing = false;
  bool polling = false;
  // Calls into JS under way (a batch, an event), and whether a close() made inside one left
  // the JS values (callbacks, arrays, async context, admission buffer) for the outermost to
  // release when it returns: nothing a running batch uses is freed under it.
  int callbacks_running = 0;
  bool release_deferred = false;
  Acceptor* owner = nullptr;
  napi_env env = nullptr;

  Napi::FunctionReference on_batch;
  // The one Int32Array every batch is handed over in (batch_limit slots, the first `count`
  // used): no ArrayBuffer is allocated per batch. JS could detach its buffer (transfer it);
  // DeliverBatch checks, and makes a new one if so.
  Napi::Reference<Napi::Int32Array> batch_array;
  // The same for the peers' words (native/peer_words.h), when JS asked for peers.
  Napi::Reference<Napi::Int32Array> peer_array;
  Napi::FunctionReference on_event;
  std::unique_ptr<Napi::AsyncContext> async_context;

  size_t batch_limit = 128;
  uint64_t pause_min_ms = 5;
  uint64_t pause_max_ms = 1000;
  uint64_t next_pause_ms = 5;

  AcceptCounters counters;
  RetryStreak retry_streak;
  std::vector<int> batch;
  // Per descriptor of `batch`: its slot in the per-address counts, or -1.
  std::vector<int32_t> batch_address_slots;
  // Per descriptor of `batch`, when JS asked for peers (option peerAddresses): the peer's
  // address from accept() itself, handed over so JS needs no getpeername().
  bool deliver_peers = false;
  std::vector<sockaddr_storage> batch_peers;

  AdmissionGate admission;
  // Keeps the shared counters' buffer alive while the gate reads it.
  Napi::Reference<Napi::Int32Array> admission_counters;
  AdmissionReason admission_paused_for = AdmissionReason::kNone;
  uint64_t admission_paused_since_ns = 0;
  // Connections allowed to wait in the accept queue while paused at a limit; -1: no bound.
  int64_t max_queued = -1;
};

class Acceptor : public Napi::ObjectWrap<Acceptor> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new Acceptor(listenFd, onBatch(fds: Int32Array, count, addressSlots?: Int32Array,
  //                                peerWords?: Int32Array, ipv6Texts?: string[]),
  //              onEvent(kind, errno, delayMs), options)
  explicit Acceptor(const Napi::CallbackInfo& info);
  ~Acceptor() override;

  // The loop is gone; its counters stay readable (the registry's "accepted" comes from here).
  void Detach(const AcceptCounters& final_counters) {
    counters_ = final_counters;
    loop_ = nullptr;
  }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Address(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value ReleaseAddress(const Napi::CallbackInfo& info);

  AcceptLoop* loop_ = nullptr;
  AcceptCounters counters_;
};

}  // namespace ntl
