#include "acceptor.h"
#include "accept_loop.h"

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

void OnHandleClosed(uv_handle_t* handle) {
  auto* loop = static_cast<AcceptLoop*>(handle->data);
  if (--loop->handles_open > 0) return;
  if (loop->owner != nullptr) loop->owner->Detach(loop->counters);
  delete loop;  // unregisters from the Addon: nothing of ours is left on the environment's loop
}

}  // namespace

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
  if (!DeferRelease(loop)) ReleaseJsValues(loop);
}

// A worker thread or the process is exiting: release everything without calling into JS.
void AcceptLoop::CloseAtTeardown() { BeginClose(this); }

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

  const AdmissionOptions admission_options = ReadAdmissionOptions(env, options);
  AdmissionLimits limits;
  limits.max_connections = admission_options.max_connections;
  limits.max_pending_handshakes = admission_options.max_pending_handshakes;
  limits.max_connections_per_address = admission_options.max_connections_per_address;
  limits.ipv6_prefix = admission_options.ipv6_prefix;
  limits.address_table_size = admission_options.address_table_size;
  limits.counts_handshakes = OptionalBoolean(env, options, "countsHandshakes");
  const int64_t max_queued = admission_options.max_queued;
  const bool deliver_peers = OptionalBoolean(env, options, "peerAddresses");
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

  uv_loop_t* uv_loop = Addon::Of(env).loop();

  // Until the end of this constructor the loop is freed by `pending` (no handle initialised
  // yet) or by BeginClose() (closes the handles that were, and frees it once they have closed;
  // listen_fd is still -1 then, so the caller's fd is not touched).
  auto pending = std::make_unique<AcceptLoop>();
  AcceptLoop* loop = pending.get();
  loop->Attach(env);
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
  SetAcceptCounts(env, stats, counters);
  stats.Set("emptyAccepts", Napi::Number::New(env, static_cast<double>(counters.empty_accepts)));
  Napi::Object admission = Napi::Object::New(env);
  bool open = loop_ != nullptr && !loop_->closing;
  admission.Set("reason", Napi::Number::New(env, open ? static_cast<int32_t>(loop_->admission_paused_for) : 0));
  uint64_t paused_ns = loop_ != nullptr ? AdmissionPausedNs(loop_) : counters.admission_paused_ns;
  admission.Set("pausedMs", Napi::Number::New(env, static_cast<double>(paused_ns) / 1e6));
  admission.Set("pauses", Napi::Number::New(env, static_cast<double>(counters.admission_pauses)));
  int64_t backlog = open ? AcceptQueueLength(loop_->listen_fd) : -1;
  admission.Set("backlog", backlog >= 0 ? Napi::Number::New(env, static_cast<double>(backlog)) : env.Null());
  SetRejections(env, admission, counters, true);
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
