#include "worker_queue.h"

#include <unistd.h>

#include <climits>
#include <string>
#include <utility>

#include "addon.h"
#include "arguments.h"
#include "dispatcher_registry.h"
#include "batch_slots.h"
#include "js_callback.h"
#include "js_values.h"

namespace ntl {

// Lives apart from the JS object: the uv_async closes on a later loop turn. An EnvResource of
// the worker's environment (native/addon.h) until freed.
struct QueueHandle final : public EnvResource {
  void CloseAtTeardown() override;

  uv_async_t wake;
  napi_env env = nullptr;
  std::shared_ptr<DispatchShared> dispatcher;
  std::shared_ptr<QueueShared> queue;
  Napi::FunctionReference on_batch;
  std::unique_ptr<Napi::AsyncContext> async_context;
  bool closing = false;
  // A batch being handed to JS, and whether a close() inside it left the JS values for the
  // batch to release (CallbackGuard, native/js_callback.h).
  int callbacks_running = 0;
  bool release_deferred = false;
  WorkerQueue* object = nullptr;
};

namespace {

void OnWakeClosed(uv_handle_t* handle) {
  auto* owner = static_cast<QueueHandle*>(handle->data);
  if (owner->object != nullptr) owner->object->Detach();
  delete owner;  // unregisters from the Addon
}

// The JS values a batch uses: released when the queue closes, but never under a batch that is
// still running (StopTaking).
void ReleaseJsValues(QueueHandle* owner) {
  owner->release_deferred = false;
  owner->on_batch.Reset();
  owner->async_context.reset();
}

// JS close(): no more descriptors; the queue stays on the books until the worker ends. From
// inside a batch callback (a handler or an `accept` subscriber closing the worker's listener)
// the JS values stay until the batch has returned (OnWake); the uv_async closes on a later
// loop turn either way.
void StopTaking(QueueHandle* owner) {
  if (owner->closing) return;
  owner->closing = true;
  LeaveQueue(*owner->dispatcher, owner->queue);
  if (!DeferRelease(owner)) ReleaseJsValues(owner);
  uv_close(reinterpret_cast<uv_handle_t*>(&owner->wake), OnWakeClosed);
}

// The worker is ending (however it ends, after close() or not): its connections end with it,
// and its books fold into its slot. An EnvResource for the environment's whole life, apart
// from the handle, which a close() frees long before.
struct QueueRetirement final : public EnvResource {
  QueueRetirement(std::shared_ptr<DispatchShared> dispatcher, std::shared_ptr<QueueShared> queue)
      : dispatcher(std::move(dispatcher)), queue(std::move(queue)) {}
  void CloseAtTeardown() override {
    RetireQueue(*dispatcher, queue);
    delete this;
  }
  std::shared_ptr<DispatchShared> dispatcher;
  std::shared_ptr<QueueShared> queue;
};

// Plain N-API with checked statuses (native/js_callback.h): false when JS took nothing.
bool CallJs(QueueHandle* owner, size_t argc, const napi_value* argv) {
  if (owner->closing || owner->on_batch.IsEmpty()) return false;
  return CallJsCallback(owner->env, *owner->async_context, owner->on_batch, argc, argv);
}

void OnWake(uv_async_t* async) {
  auto* owner = static_cast<QueueHandle*>(async->data);
  if (owner->closing || owner->callbacks_running > 0) return;
  std::vector<AcceptedFd> batch;
  {
    std::lock_guard<std::mutex> lock(owner->queue->mutex);
    batch.swap(owner->queue->pending);
    // From here the batch is this loop's: counted as "being handed over" until FinishBatch.
    owner->queue->delivering = batch.size();
  }
  if (batch.empty()) return;
  uint64_t closed = 0;
  std::vector<int32_t> closed_slots;  // the address slots of the fds closed here
  napi_env env = owner->env;
  napi_handle_scope scope = nullptr;
  bool delivered = false;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    void* data = nullptr;
    napi_value buffer = nullptr;
    // argv: the descriptors, and (when the accept thread counts addresses) each one's
    // per-address slot, which the worker's registry gives back when it releases the connection.
    napi_value argv[2] = {nullptr, nullptr};
    void* address_data = nullptr;
    napi_value address_buffer = nullptr;
    bool ready = napi_create_arraybuffer(env, batch.size() * sizeof(int32_t), &data, &buffer) == napi_ok &&
                 napi_create_typedarray(env, napi_int32_array, batch.size(), buffer, 0, &argv[0]) == napi_ok;
    if (ready && owner->dispatcher->CountsPeersAtAccept()) {
      ready = napi_create_arraybuffer(env, batch.size() * sizeof(int32_t), &address_data, &address_buffer) == napi_ok &&
              napi_create_typedarray(env, napi_int32_array, batch.size(), address_buffer, 0, &argv[1]) == napi_ok;
    } else if (ready) {
      ready = napi_get_undefined(env, &argv[1]) == napi_ok;
    }
    if (ready) {
      auto* slots = static_cast<int32_t*>(data);  // filled before the call; read back below
      for (size_t i = 0; i < batch.size(); i++) slots[i] = batch[i].fd;
      if (address_data != nullptr) {
        auto* address_slots = static_cast<int32_t*>(address_data);
        for (size_t i = 0; i < batch.size(); i++) address_slots[i] = batch[i].address_slot;
      }
      {
        CallbackGuard<QueueHandle, ReleaseJsValues> guard(owner);
        (void)CallJs(owner, 2, argv);
      }
      // Read from the array handed over (alive in this scope), with the same detach check as the
      // acceptor: a detached buffer leaves the batch's descriptors open, never closed twice
      // (native/acceptor.h). Each readable slot says who owns its descriptor.
      const int32_t* after = BatchSlotsOf(env, argv[0], batch.size());
      for (size_t i = 0; after != nullptr && i < batch.size(); i++) {
        if (ClosedAfterBatch(after[i])) {
          close(batch[i].fd);
          // JS never tracked it, so JS never counts its address out.
          closed_slots.push_back(batch[i].address_slot);
          // A returned slot is already counted closed by JS (its registry's releaseUnregistered).
          if (after[i] != kBatchSlotReturned) closed++;
        }
      }
      delivered = true;
    }
    (void)napi_close_handle_scope(env, scope);
  }
  if (!delivered) {
    // No array to hand over: every descriptor is still ours.
    for (const AcceptedFd& accepted : batch) {
      close(accepted.fd);
      closed_slots.push_back(accepted.address_slot);
    }
    closed = batch.size();
  }
  FinishBatch(*owner->dispatcher, *owner->queue, closed, closed_slots);
}

}  // namespace

// The worker is going away: take nothing more, with no JS call (QueueRetirement does the books).
void QueueHandle::CloseAtTeardown() { StopTaking(this); }

Napi::Function WorkerQueue::Define(Napi::Env env) {
  return DefineClass(env, "WorkerQueue",
                     {
                         InstanceMethod<&WorkerQueue::Close>("close"),
                         InstanceMethod<&WorkerQueue::Publish>("publish"),
                         InstanceMethod<&WorkerQueue::ReleaseAddress>("releaseAddress"),
                         InstanceMethod<&WorkerQueue::AdmitClient>("admitClient"),
                         InstanceMethod<&WorkerQueue::Ref>("ref"),
                         InstanceMethod<&WorkerQueue::Unref>("unref"),
                     });
}

WorkerQueue::WorkerQueue(const Napi::CallbackInfo& info) : Napi::ObjectWrap<WorkerQueue>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[2].IsFunction()) throw InvalidArgument(env, true, "WorkerQueue(dispatcherId, slot, onBatch)");
  int id = static_cast<int>(RequireInteger(env, info[0], "dispatcherId", 1, INT_MAX));
  int slot = static_cast<int>(RequireInteger(env, info[1], "slot", 0, INT_MAX));
  std::shared_ptr<DispatchShared> dispatcher = FindDispatcher(id);
  if (!dispatcher) {
    Napi::Error error = Napi::Error::New(env, "no open dispatcher " + std::to_string(id));
    error.Set("code", Napi::String::New(env, "ERR_LISTENER_CLOSED"));
    throw error;
  }
  uv_loop_t* uv_loop = Addon::Of(env).loop();
  // Registered before anything can need closing; retired at the environment's teardown.
  auto retirement = std::make_unique<QueueRetirement>(dispatcher, std::make_shared<QueueShared>());
  retirement->Attach(env);
  auto owner = std::make_unique<QueueHandle>();
  owner->Attach(env);
  owner->env = env;
  owner->dispatcher = dispatcher;
  owner->queue = retirement->queue;
  owner->queue->slot = slot;
  owner->on_batch = Napi::Persistent(info[2].As<Napi::Function>());
  owner->async_context = std::make_unique<Napi::AsyncContext>(env, "native-tls-listener:worker-queue");
  int err = uv_async_init(uv_loop, &owner->wake, OnWake);
  if (err != 0) throw UvError(env, err, "uv_async_init");
  owner->wake.data = owner.get();
  QueueHandle* raw = owner.release();  // from here freed by StopTaking -> OnWakeClosed
  retirement.release();  // from here freed at the environment's teardown
  raw->queue->wake = &raw->wake;
  raw->object = this;
  handle_ = raw;
  dispatcher_ = dispatcher;
  queue_ = raw->queue;
  JoinQueue(*dispatcher, raw->queue);
}

WorkerQueue::~WorkerQueue() {
  if (handle_ != nullptr) {
    handle_->object = nullptr;
    StopTaking(handle_);
  }
}

// What it closes unserved is counted in the queue's closed_here, which the main thread's book
// reads (closedByQueue: aborted handshakes on a TLS listener).
Napi::Value WorkerQueue::Close(const Napi::CallbackInfo& info) {
  if (handle_ != nullptr) StopTaking(handle_);
  return info.Env().Undefined();
}

Napi::Value WorkerQueue::Publish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw InvalidArgument(env, true, "publish(counters: Float64Array)");
  }
  Napi::Float64Array values = info[0].As<Napi::Float64Array>();
  if (values.ElementLength() != kPublishedCount) throw InvalidArgument(env, false, "publish: wrong number of counters");
  // After close() too: the worker's connections keep closing and its books keep counting.
  Published published{};
  for (size_t i = 0; i < kPublishedCount; i++) published[i] = values[i];
  PublishCounters(*dispatcher_, *queue_, published);
  return env.Undefined();
}

Napi::Value WorkerQueue::ReleaseAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw InvalidArgument(env, true, "releaseAddress(slot)");
  int32_t slot = static_cast<int32_t>(RequireInteger(env, info[0], "slot", 0, INT32_MAX));
  // After close() too: connections the worker holds keep closing.
  return Napi::Boolean::New(env, ReleaseHeldAddress(*dispatcher_, *queue_, slot));
}

Napi::Value WorkerQueue::AdmitClient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw InvalidArgument(env, true, "admitClient(address: string)");
  std::string text = info[0].As<Napi::String>().Utf8Value();
  AddressKey key;
  // Not an address (src/accept/address_key.ts sends only addresses it limits): not counted.
  if (!AddressKeyOfText(text, dispatcher_->ipv6_prefix, &key)) return Napi::Number::New(env, kAddressNotCounted);
  return Napi::Number::New(env, AdmitClientAddress(*dispatcher_, *queue_, key));
}

Napi::Value WorkerQueue::Ref(const Napi::CallbackInfo& info) {
  if (handle_ != nullptr && !handle_->closing) uv_ref(reinterpret_cast<uv_handle_t*>(&handle_->wake));
  return info.Env().Undefined();
}

Napi::Value WorkerQueue::Unref(const Napi::CallbackInfo& info) {
  if (handle_ != nullptr && !handle_->closing) uv_unref(reinterpret_cast<uv_handle_t*>(&handle_->wake));
  return info.Env().Undefined();
}

}  // namespace ntl
