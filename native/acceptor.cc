#include "acceptor.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <string>

#include "accept_errors.h"
#include "accept_options.h"
#include "accept_queue.h"
#include "batch_slots.h"
#include "arguments.h"
#include "js_callback.h"
#include "js_values.h"
#include "listen_socket.h"
#include "load_shedding.h"
#include "peer_words.h"

namespace ntl {
namespace {

// A libuv call failed: the Error JS sees, shaped like Node's own system errors (code, a
// positive errno, and the call as syscall). libuv's codes are -errno on Unix.
Napi::Error UvError(Napi::Env env, int status, const char* call) {
  std::string code = uv_err_name(status);
  Napi::Error error = Napi::Error::New(env, std::string(call) + " " + code + ": " + uv_strerror(status));
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -status));
  error.Set("syscall", Napi::String::New(env, call));
  return error;
}

void OnHandleClosed(uv_handle_t* handle) {
  auto* loop = static_cast<AcceptLoop*>(handle->data);
  if (--loop->handles_open > 0) return;
  if (loop->owner != nullptr) loop->owner->Detach(loop->counters);
  if (loop->cleanup_hook != nullptr) {
    // Tells Node the environment may finish tearing down: nothing of ours is left on its loop.
    // It fails only for a hook that is not registered; there is nothing to undo either way.
    (void)napi_remove_async_cleanup_hook(loop->cleanup_hook);
  }
  delete loop;
}

// The JS values a batch uses: the callbacks, the reused arrays, the async context and the
// admission counters' buffer (the gate reads it through a raw pointer). Released when the
// acceptor closes, but never under a batch that is still running (BeginClose).
void ReleaseJsValues(AcceptLoop* loop) {
  loop->release_deferred = false;
  loop->on_batch.Reset();
  loop->batch_array.Reset();
  loop->peer_array.Reset();
  loop->on_event.Reset();
  loop->async_context.reset();
  loop->admission_counters.Reset();
}

// Stops polling, closes the listening fd at once (so the port is free when this returns) and
// starts closing the libuv handles that were initialised; the loop is freed once they have
// closed, on a later loop turn. Safe to call twice. Makes no JS calls. Called from inside a
// batch callback (a handler or an `accept` subscriber closing the listener), it leaves what
// the batch still uses to DeliverBatch, which releases it once the callback has returned.
void BeginClose(AcceptLoop* loop) {
  if (loop->closing) return;
  loop->closing = true;
  loop->polling = false;
  // uv_close on a poll handle stops it and removes the fd from epoll/kqueue before returning,
  // so closing the fd right after is safe. A handle uv_*_init refused is not a handle at all:
  // closing (or starting) it would read a zeroed struct.
  if (loop->poll_initialized) uv_close(reinterpret_cast<uv_handle_t*>(&loop->poll), OnHandleClosed);
  if (loop->timer_initialized) uv_close(reinterpret_cast<uv_handle_t*>(&loop->resume_timer), OnHandleClosed);
  if (loop->shed_timer_initialized) uv_close(reinterpret_cast<uv_handle_t*>(&loop->shed_timer), OnHandleClosed);
  if (loop->listen_fd >= 0) {
    close(loop->listen_fd);
    loop->listen_fd = -1;
  }
  if (loop->callbacks_running > 0) {
    loop->release_deferred = true;
    return;
  }
  ReleaseJsValues(loop);
}

// Around a call into JS and whatever reads its results (a batch's slots): a close() made by
// the callback releases the JS values when the outermost guard ends, not under the call.
class CallbackGuard {
 public:
  explicit CallbackGuard(AcceptLoop* loop) : loop_(loop) { loop_->callbacks_running++; }
  ~CallbackGuard() {
    if (--loop_->callbacks_running == 0 && loop_->release_deferred) ReleaseJsValues(loop_);
  }
  CallbackGuard(const CallbackGuard&) = delete;
  CallbackGuard& operator=(const CallbackGuard&) = delete;

 private:
  AcceptLoop* loop_;
};

void OnEnvironmentTeardown(napi_async_cleanup_hook_handle, void* arg) {
  // A worker thread or the process is exiting: release everything without calling into JS.
  BeginClose(static_cast<AcceptLoop*>(arg));
}

// CallJs, DeliverBatch and ReportEvent run inside libuv callbacks and use plain N-API calls,
// each status checked (native/js_callback.h): a failed call just means JS took nothing.
bool CallJs(AcceptLoop* loop, Napi::FunctionReference& callback, size_t argc, const napi_value* argv) {
  if (loop->closing || callback.IsEmpty()) return false;
  return CallJsCallback(loop->env, *loop->async_context, callback, argc, argv);
}

// The Int32Array kept in `ref`, reused for every batch, when it still has `count` elements
// (JS may have detached its buffer, by transferring it); else nullptr.
int32_t* ReusedArray(napi_env env, Napi::Reference<Napi::Int32Array>& ref, napi_value* array, size_t count) {
  if (ref.IsEmpty() || napi_get_reference_value(env, ref, array) != napi_ok) return nullptr;
  return BatchSlotsOf(env, *array, count);
}

// A new Int32Array of `capacity` elements, kept in `ref` for later batches; nullptr when none
// could be made.
int32_t* NewReusedArray(napi_env env, Napi::Reference<Napi::Int32Array>& ref, napi_value* array, size_t capacity) {
  void* data = nullptr;
  napi_value buffer = nullptr;
  if (napi_create_arraybuffer(env, capacity * sizeof(int32_t), &data, &buffer) != napi_ok ||
      napi_create_typedarray(env, napi_int32_array, capacity, buffer, 0, array) != napi_ok) {
    return nullptr;
  }
  ref.Reset();
  napi_ref created = nullptr;
  if (napi_create_reference(env, *array, 1, &created) != napi_ok) return nullptr;
  ref = Napi::Reference<Napi::Int32Array>(env, created);
  return static_cast<int32_t*>(data);
}

// The slots of the loop's batch array (batch_limit of them), or nullptr when it has none.
int32_t* BatchSlots(AcceptLoop* loop, napi_value* array, size_t count) {
  return ReusedArray(loop->env, loop->batch_array, array, count);
}

// The batch's peers (native/peer_words.h): their words in the loop's reused peer array, and
// the text of each IPv6 peer that is not IPv4-mapped in a new array (undefined when the batch
// has none, as it mostly has). Both undefined when JS did not ask for peers.
bool CreatePeers(AcceptLoop* loop, napi_value* words_array, napi_value* ipv6_texts) {
  napi_env env = loop->env;
  if (napi_get_undefined(env, ipv6_texts) != napi_ok) return false;
  if (!loop->deliver_peers) return napi_get_undefined(env, words_array) == napi_ok;
  size_t count = loop->batch_peers.size();
  size_t capacity = loop->batch_limit * kPeerWords;
  int32_t* words = ReusedArray(env, loop->peer_array, words_array, count * kPeerWords);
  if (words == nullptr) words = NewReusedArray(env, loop->peer_array, words_array, capacity);
  if (words == nullptr) return false;
  std::string text;
  bool texts_made = false;
  for (size_t i = 0; i < count; i++) {
    if (WritePeerWords(loop->batch_peers[i], words + i * kPeerWords, &text) != kPeerIPv6) continue;
    napi_value entry = nullptr;
    if (!texts_made) {
      if (napi_create_array_with_length(env, count, ipv6_texts) != napi_ok) return false;
      texts_made = true;
    }
    if (napi_create_string_latin1(env, text.c_str(), text.size(), &entry) != napi_ok ||
        napi_set_element(env, *ipv6_texts, static_cast<uint32_t>(i), entry) != napi_ok) {
      return false;
    }
  }
  return true;
}

void DeliverBatch(AcceptLoop* loop) {
  if (loop->batch.empty()) return;
  CallbackGuard guard(loop);
  napi_env env = loop->env;
  size_t count = loop->batch.size();
  napi_handle_scope scope = nullptr;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    // argv: the reused descriptor array, the batch's size, each descriptor's per-address slot
    // (a new array only when per-address limits are on, else undefined), the peers' words and
    // IPv6 texts (CreatePeers).
    napi_value argv[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
    int32_t* slots = BatchSlots(loop, &argv[0], count);
    if (slots == nullptr) slots = NewReusedArray(env, loop->batch_array, &argv[0], loop->batch_limit);
    int32_t* address_slots = nullptr;
    bool ready = slots != nullptr && napi_create_uint32(env, static_cast<uint32_t>(count), &argv[1]) == napi_ok;
    if (ready && loop->admission.per_address()) {
      void* address_data = nullptr;
      napi_value address_buffer = nullptr;
      ready = napi_create_arraybuffer(env, count * sizeof(int32_t), &address_data, &address_buffer) == napi_ok &&
              napi_create_typedarray(env, napi_int32_array, count, address_buffer, 0, &argv[2]) == napi_ok;
      address_slots = static_cast<int32_t*>(address_data);
    } else if (ready) {
      ready = napi_get_undefined(env, &argv[2]) == napi_ok;
    }
    if (ready && CreatePeers(loop, &argv[3], &argv[4])) {
      for (size_t i = 0; i < count; i++) {
        slots[i] = loop->batch[i];
        if (address_slots != nullptr) address_slots[i] = loop->batch_address_slots[i];
      }
      (void)CallJs(loop, loop->on_batch, 5, argv);
      // The slots are read from the array handed over, alive in this handle scope whatever the
      // callback did (a close() in it drops the loop's reference only after this batch). Each
      // slot says who owns its descriptor (acceptor.h). JS may have detached the buffer
      // (transferred it): the slots are unreadable then, and the descriptors are left alone
      // (acceptor.h); the next batch gets a new array.
      int32_t* after = BatchSlotsOf(env, argv[0], count);
      if (after == nullptr) loop->batch_array.Reset();
      for (size_t i = 0; after != nullptr && i < count; i++) {
        if (ClosedAfterBatch(after[i])) {
          close(loop->batch[i]);
          // JS never tracked it, so JS never uncounts it.
          loop->admission.Uncount(loop->batch_address_slots[i]);
        }
      }
      loop->batch.clear();
      loop->batch_address_slots.clear();
      loop->batch_peers.clear();
    }
    // Fails only for a scope that is not the innermost; nothing here opens another.
    (void)napi_close_handle_scope(env, scope);
  }
  // No array to hand over: every descriptor is still ours.
  for (size_t i = 0; i < loop->batch.size(); i++) {
    close(loop->batch[i]);
    loop->admission.Uncount(loop->batch_address_slots[i]);
  }
  loop->batch.clear();
  loop->batch_address_slots.clear();
  loop->batch_peers.clear();
}

void ReportEvent(AcceptLoop* loop, AcceptEventKind kind, int err, uint64_t delay_ms) {
  CallbackGuard guard(loop);
  napi_env env = loop->env;
  napi_handle_scope scope = nullptr;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value args[3] = {nullptr, nullptr, nullptr};
  if (napi_create_int32(env, kind, &args[0]) == napi_ok && napi_create_int32(env, err, &args[1]) == napi_ok &&
      napi_create_double(env, static_cast<double>(delay_ms), &args[2]) == napi_ok) {
    CallJs(loop, loop->on_event, 3, args);
  }
  (void)napi_close_handle_scope(env, scope);
}

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

}  // namespace

Napi::Function Acceptor::Define(Napi::Env env) {
  return DefineClass(env, "Acceptor",
                     {
                         InstanceMethod<&Acceptor::Start>("start"),
                         InstanceMethod<&Acceptor::Close>("close"),
                         InstanceMethod<&Acceptor::Stats>("stats"),
                         InstanceMethod<&Acceptor::Address>("address"),
                         InstanceMethod<&Acceptor::Ref>("ref"),
                         InstanceMethod<&Acceptor::Unref>("unref"),
                         InstanceMethod<&Acceptor::Resume>("resume"),
                         InstanceMethod<&Acceptor::ReleaseAddress>("releaseAddress"),
                     });
}

Acceptor::Acceptor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Acceptor>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[1].IsFunction() || !info[2].IsFunction() || !info[3].IsObject()) {
    throw InvalidArgument(env, true, "Acceptor(listenFd, onBatch, onEvent, options)");
  }
  // Every check that can throw runs before anything is allocated or initialised.
  int listen_fd = static_cast<int>(RequireInteger(env, info[0], "listenFd", 0, INT_MAX));
  Napi::Object options = info[3].As<Napi::Object>();
  const AcceptTuning tuning = ReadAcceptTuning(env, options);

  AdmissionLimits limits;
  limits.max_connections = OptionalInteger(env, options, "maxConnections", 0, 0, kAdmissionLimitMax);
  limits.max_pending_handshakes = OptionalInteger(env, options, "maxPendingHandshakes", 0, 0, kAdmissionLimitMax);
  limits.max_connections_per_address =
      OptionalInteger(env, options, "maxConnectionsPerAddress", 0, 0, kAdmissionLimitMax);
  limits.ipv6_prefix =
      static_cast<int>(OptionalInteger(env, options, "perAddressIPv6Prefix", kDefaultIPv6Prefix, 1, 128));
  limits.address_table_size =
      OptionalInteger(env, options, "addressTableSize", 0, 1, static_cast<int64_t>(kAddressTableMax));
  Napi::Value handshakes = options.Get("countsHandshakes");
  if (!handshakes.IsUndefined() && !handshakes.IsBoolean()) {
    throw InvalidArgument(env, true, "countsHandshakes must be a boolean, got " + DescribeValue(handshakes));
  }
  limits.counts_handshakes = handshakes.IsBoolean() && handshakes.As<Napi::Boolean>().Value();
  // -1 when absent: the queue is not bounded. It only matters while paused at a limit.
  int64_t max_queued = OptionalInteger(env, options, "maxQueuedConnections", -1, 0, kAdmissionLimitMax);
  if (max_queued >= 0 && limits.max_connections == 0 && limits.max_pending_handshakes == 0) {
    throw InvalidArgument(env, false, "maxQueuedConnections needs maxConnections or maxPendingHandshakes");
  }
  Napi::Value peers_option = options.Get("peerAddresses");
  if (!peers_option.IsUndefined() && !peers_option.IsBoolean()) {
    throw InvalidArgument(env, true, "peerAddresses must be a boolean, got " + DescribeValue(peers_option));
  }
  bool deliver_peers = peers_option.IsBoolean() && peers_option.As<Napi::Boolean>().Value();
  Napi::Value shared = options.Get("admissionCounters");
  Napi::Int32Array admission_counters;
  if (!shared.IsUndefined()) {
    if (!shared.IsTypedArray() || shared.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      throw InvalidArgument(env, true, "admissionCounters must be an Int32Array, got " + DescribeValue(shared));
    }
    admission_counters = shared.As<Napi::Int32Array>();
    size_t needed = kCounterCount;
    if (admission_counters.ElementLength() < needed) {
      throw InvalidArgument(env, false, "admissionCounters must have at least " + std::to_string(needed) + " elements");
    }
  } else if (limits.max_connections > 0 || limits.max_pending_handshakes > 0 || limits.max_connections_per_address > 0) {
    throw InvalidArgument(env, true, "admission limits need admissionCounters");
  }

  uv_loop_t* uv_loop = nullptr;
  if (napi_get_uv_event_loop(env, &uv_loop) != napi_ok || uv_loop == nullptr) {
    throw Napi::Error::New(env, "no libuv loop for this environment");
  }

  // Until the end of this constructor the loop is freed by `pending` (no handle initialised
  // yet) or by BeginClose() (closes the handles that were, and frees it once they have closed;
  // listen_fd is still -1 then, so the caller's fd is not touched).
  auto pending = std::make_unique<AcceptLoop>();
  AcceptLoop* loop = pending.get();
  loop->env = env;
  loop->batch_limit = tuning.batch_limit;
  loop->pause_min_ms = tuning.pause_min_ms;
  loop->pause_max_ms = tuning.pause_max_ms;
  loop->next_pause_ms = loop->pause_min_ms;
  loop->max_queued = max_queued;
  loop->batch.reserve(loop->batch_limit);
  loop->batch_address_slots.reserve(loop->batch_limit);
  loop->deliver_peers = deliver_peers;
  if (deliver_peers) loop->batch_peers.reserve(loop->batch_limit);
  if (!admission_counters.IsEmpty()) {
    loop->admission_counters = Napi::Persistent(admission_counters);
    loop->admission.Configure(limits, admission_counters.Data(), admission_counters.ElementLength());
  }
  loop->on_batch = Napi::Persistent(info[1].As<Napi::Function>());
  loop->on_event = Napi::Persistent(info[2].As<Napi::Function>());
  loop->async_context = std::make_unique<Napi::AsyncContext>(env, "native-tls-listener:accept");

  // UV_EEXIST: this thread's loop already watches the fd (a net.Server still listening on it,
  // or another acceptor adopted it). The fd is left as it was: it is not ours.
  int err = uv_poll_init(uv_loop, &loop->poll, listen_fd);
  if (err != 0) throw UvError(env, err, "uv_poll_init");
  loop->poll.data = loop;
  loop->poll_initialized = true;
  loop->handles_open++;
  pending.release();  // from here an initialised handle must be uv_close()d before the free

  err = uv_timer_init(uv_loop, &loop->resume_timer);
  if (err != 0) {
    BeginClose(loop);
    throw UvError(env, err, "uv_timer_init");
  }
  loop->resume_timer.data = loop;
  loop->timer_initialized = true;
  loop->handles_open++;

  if (max_queued >= 0) {
    err = uv_timer_init(uv_loop, &loop->shed_timer);
    if (err != 0) {
      BeginClose(loop);
      throw UvError(env, err, "uv_timer_init");
    }
    loop->shed_timer.data = loop;
    loop->shed_timer_initialized = true;
    loop->handles_open++;
  }

  if (napi_add_async_cleanup_hook(env, OnEnvironmentTeardown, loop, &loop->cleanup_hook) != napi_ok) {
    loop->cleanup_hook = nullptr;
    BeginClose(loop);
    throw Napi::Error::New(env, "napi_add_async_cleanup_hook failed");
  }

  // Nothing can fail any more: the listening fd and the loop change hands here.
  loop->listen_fd = listen_fd;  // closed by BeginClose from now on
  loop->owner = this;
  loop_ = loop;
}

Acceptor::~Acceptor() {
  // Collected while still open (its owner dropped it without close()): close, without JS.
  if (loop_ != nullptr) {
    loop_->owner = nullptr;
    BeginClose(loop_);
  }
}

Napi::Value Acceptor::Start(const Napi::CallbackInfo& info) {
  if (loop_ == nullptr || loop_->closing) {
    throw Napi::Error::New(info.Env(), "acceptor is closed");
  }
  if (!loop_->polling) {
    int err = uv_poll_start(&loop_->poll, UV_READABLE, OnReadable);
    if (err != 0) {
      // Never accepted anything: the listening fd goes back to the caller (acceptor.h), and
      // the acceptor closes.
      loop_->listen_fd = -1;
      BeginClose(loop_);
      throw UvError(info.Env(), err, "uv_poll_start");
    }
    loop_->polling = true;
  }
  return info.Env().Undefined();
}

Napi::Value Acceptor::Close(const Napi::CallbackInfo& info) {
  if (loop_ != nullptr) BeginClose(loop_);
  return info.Env().Undefined();
}

Napi::Value Acceptor::Ref(const Napi::CallbackInfo& info) {
  if (loop_ != nullptr && !loop_->closing) {
    uv_ref(reinterpret_cast<uv_handle_t*>(&loop_->poll));
    uv_ref(reinterpret_cast<uv_handle_t*>(&loop_->resume_timer));
    if (loop_->shed_timer_initialized) uv_ref(reinterpret_cast<uv_handle_t*>(&loop_->shed_timer));
  }
  return info.Env().Undefined();
}

Napi::Value Acceptor::Unref(const Napi::CallbackInfo& info) {
  if (loop_ != nullptr && !loop_->closing) {
    uv_unref(reinterpret_cast<uv_handle_t*>(&loop_->poll));
    uv_unref(reinterpret_cast<uv_handle_t*>(&loop_->resume_timer));
    if (loop_->shed_timer_initialized) uv_unref(reinterpret_cast<uv_handle_t*>(&loop_->shed_timer));
  }
  return info.Env().Undefined();
}

namespace {

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

}  // namespace

// JS released a connection while accepting was paused (the shared `paused` word said so):
// an admission pause ends if no limit is reached any more, and a pause for lack of
// descriptors ends now rather than when its timer fires, since a descriptor was just freed.
// Returns true when an admission pause ended (JS reports leaving backpressure).
Napi::Value Acceptor::Resume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (loop_ == nullptr || loop_->closing || !loop_->admission.configured()) return Napi::Boolean::New(env, false);
  AcceptLoop* loop = loop_;
  int32_t& paused = loop->admission.paused();
  if ((paused & kPausedExhausted) != 0) {
    (void)uv_timer_stop(&loop->resume_timer);
    paused &= ~kPausedExhausted;
  }
  bool admission_ended = false;
  if ((paused & kPausedAdmission) != 0 && loop->admission.Full() == AdmissionReason::kNone) {
    paused &= ~kPausedAdmission;
    loop->counters.admission_paused_ns += uv_hrtime() - loop->admission_paused_since_ns;
    loop->admission_paused_for = AdmissionReason::kNone;
    admission_ended = true;
    StopShedding(loop);
  } else if ((paused & kPausedAdmission) != 0 && loop->shed_timer_initialized) {
    // A slot freed, but a limit still holds: a good moment to look at the queue.
    Shed(loop);
  }
  if ((paused & kPausedAdmission) == 0) StartPolling(loop);
  return Napi::Boolean::New(env, admission_ended);
}

// JS released a connection counted in a per-address slot (a batch's addressSlots): counted
// out of the table. False when the slot counts nothing, or the acceptor is gone with its table.
Napi::Value Acceptor::ReleaseAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw InvalidArgument(env, true, "releaseAddress(slot)");
  int32_t slot = static_cast<int32_t>(RequireInteger(env, info[0], "slot", 0, INT32_MAX));
  if (loop_ == nullptr) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, loop_->admission.ReleaseAddress(slot));
}

Napi::Value Acceptor::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const AcceptCounters& counters = loop_ != nullptr ? loop_->counters : counters_;
  Napi::Object stats = Napi::Object::New(env);
  stats.Set("accepted", Napi::Number::New(env, static_cast<double>(counters.accepted)));
  stats.Set("batches", Napi::Number::New(env, static_cast<double>(counters.batches)));
  stats.Set("pauses", Napi::Number::New(env, static_cast<double>(counters.pauses)));
  stats.Set("emptyAccepts", Napi::Number::New(env, static_cast<double>(counters.empty_accepts)));
  stats.Set("retriesByErrno", ErrnoCounts(env, counters.retries_by_errno));
  Napi::Object admission = Napi::Object::New(env);
  bool open = loop_ != nullptr && !loop_->closing;
  admission.Set("reason", Napi::Number::New(env, open ? static_cast<int32_t>(loop_->admission_paused_for) : 0));
  uint64_t paused_ns = loop_ != nullptr ? AdmissionPausedNs(loop_) : counters.admission_paused_ns;
  admission.Set("pausedMs", Napi::Number::New(env, static_cast<double>(paused_ns) / 1e6));
  admission.Set("pauses", Napi::Number::New(env, static_cast<double>(counters.admission_pauses)));
  int64_t backlog = open ? AcceptQueueLength(loop_->listen_fd) : -1;
  admission.Set("backlog", backlog >= 0 ? Napi::Number::New(env, static_cast<double>(backlog)) : env.Null());
  admission.Set("rejectedPerAddress", Napi::Number::New(env, static_cast<double>(counters.rejected_per_address)));
  admission.Set("rejectedAddressTableFull",
                Napi::Number::New(env, static_cast<double>(counters.rejected_address_table_full)));
  admission.Set("rejectedQueued", Napi::Number::New(env, static_cast<double>(counters.rejected_queued)));
  admission.Set("sheddingCpuMs", Napi::Number::New(env, static_cast<double>(counters.shedding_cpu_ns) / 1e6));
  stats.Set("admission", admission);
  stats.Set("closed", Napi::Boolean::New(env, loop_ == nullptr || loop_->closing));
  return stats;
}

Napi::Value Acceptor::Address(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (loop_ == nullptr || loop_->closing) return env.Null();
  return LocalAddressValue(env, loop_->listen_fd);
}

}  // namespace ntl
