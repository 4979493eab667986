#include "dispatcher.h"

#include <unistd.h>

#include <climits>
#include <cstring>
#include <string>

#include "accept_options.h"
#include "accept_thread.h"
#include "addon.h"
#include "arguments.h"
#include "dispatcher_registry.h"
#include "js_callback.h"
#include "js_values.h"
#include "listen_socket.h"

namespace ntl {

// Lives apart from the JS object: the uv_async closes on a later loop turn. An EnvResource of
// the environment that made the dispatcher (native/addon.h): that environment's Addon owns it,
// and with it the listening socket and the accept thread (dispatcher_registry.h says why the
// workers' environments find it through a process-wide lookup and own none of it).
struct DispatcherHandle final : public EnvResource {
  void CloseAtTeardown() override;

  uv_async_t wake;
  napi_env env = nullptr;
  std::shared_ptr<DispatchShared> shared;
  Napi::FunctionReference on_event;
  std::unique_ptr<Napi::AsyncContext> async_context;
  bool closing = false;
  bool started = false;
  Dispatcher* object = nullptr;  // the JS object, while it lives
};

namespace {

void OnWakeClosed(uv_handle_t* handle) {
  auto* owner = static_cast<DispatcherHandle*>(handle->data);
  if (owner->object != nullptr) owner->object->Detach();
  delete owner;  // unregisters from the Addon
}

// Stops the accept thread (joined: nothing accepts once this returns), closes the listening
// fd and starts closing the wake-up handle. Queues of workers keep the shared state alive and
// drain what was dispatched to them. No JS calls.
void BeginClose(DispatcherHandle* owner) {
  if (owner->closing) return;
  owner->closing = true;
  UnregisterDispatcher(owner->shared->id);
  StopAcceptThread(*owner->shared);
  owner->on_event.Reset();
  owner->async_context.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&owner->wake), OnWakeClosed);
}

// Plain N-API with checked statuses (native/js_callback.h): a failed call means JS took nothing.
void ReportEvent(DispatcherHandle* owner, const DispatchEvent& event) {
  if (owner->closing || owner->on_event.IsEmpty()) return;
  (void)CallEventCallback(owner->env, *owner->async_context, owner->on_event, event.kind, event.err, event.delay_ms);
}

void OnWake(uv_async_t* async) {
  auto* owner = static_cast<DispatcherHandle*>(async->data);
  std::vector<DispatchEvent> events;
  {
    std::lock_guard<std::mutex> lock(owner->shared->mutex);
    events.swap(owner->shared->events);
  }
  for (const DispatchEvent& event : events) ReportEvent(owner, event);
}

Napi::Object PublishedObject(Napi::Env env, const Published& values) {
  static const char* const kNames[kPublishedCount] = {"active",           "closed",         "handshakesCompleted",
                                                      "handshakesFailed", "handshakesTimedOut", "handshakesAborted",
                                                      "sniCredential",    "primaryCredential", "handlerErrors",
                                                      "idleTimeouts",     "inSetup",         "proxyInvalid",
                                                      "proxyUntrusted",   "rejectedPerAddress",
                                                      "rejectedAddressTableFull", "proxyHealthChecks"};
  Napi::Object object = Napi::Object::New(env);
  for (size_t i = 0; i < kPublishedCount; i++) object.Set(kNames[i], Napi::Number::New(env, values[i]));
  return object;
}

}  // namespace

// The environment that made the dispatcher is going away: stop it, with no JS call.
void DispatcherHandle::CloseAtTeardown() { BeginClose(this); }

Napi::Function Dispatcher::Define(Napi::Env env) {
  return DefineClass(env, "Dispatcher",
                     {
                         InstanceMethod<&Dispatcher::Start>("start"),
                         InstanceMethod<&Dispatcher::Close>("close"),
                         InstanceMethod<&Dispatcher::Stats>("stats"),
                         InstanceMethod<&Dispatcher::Address>("address"),
                         InstanceMethod<&Dispatcher::Ref>("ref"),
                         InstanceMethod<&Dispatcher::Unref>("unref"),
                         InstanceAccessor<&Dispatcher::Id>("id"),
                     });
}

Dispatcher::Dispatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Dispatcher>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[1].IsFunction() || !info[2].IsObject()) {
    throw InvalidArgument(env, true, "Dispatcher(listenFd, onEvent, options)");
  }
  int listen_fd = static_cast<int>(RequireInteger(env, info[0], "listenFd", 0, INT_MAX));
  Napi::Object options = info[2].As<Napi::Object>();
  const AcceptTuning tuning = ReadAcceptTuning(env, options);
  uv_loop_t* uv_loop = Addon::Of(env).loop();
  const AdmissionOptions admission = ReadAdmissionOptions(env, options);
  const bool per_address_from_header = OptionalBoolean(env, options, "perAddressFromHeader");
  auto shared = std::make_shared<DispatchShared>();
  shared->max_connections = admission.max_connections;
  shared->max_pending_handshakes = admission.max_pending_handshakes;
  shared->max_queued = admission.max_queued;
  shared->max_connections_per_address = admission.max_connections_per_address;
  shared->ipv6_prefix = admission.ipv6_prefix;
  if (admission.max_connections_per_address > 0) {
    shared->addresses.Configure(AddressTableSize(admission.address_table_size, admission.max_connections),
                                admission.max_connections_per_address);
  }
  shared->per_address_from_header = per_address_from_header;
  shared->batch_limit = tuning.batch_limit;
  shared->queue_limit = kQueueBatches * shared->batch_limit;
  shared->pause_min_ms = tuning.pause_min_ms;
  shared->pause_max_ms = tuning.pause_max_ms;

  auto owner = std::make_unique<DispatcherHandle>();
  owner->Attach(env);
  owner->env = env;
  owner->on_event = Napi::Persistent(info[1].As<Napi::Function>());
  owner->async_context = std::make_unique<Napi::AsyncContext>(env, "native-tls-listener:dispatch");
  int err = uv_async_init(uv_loop, &owner->wake, OnWake);
  if (err != 0) throw UvError(env, err, "uv_async_init");
  owner->wake.data = owner.get();
  DispatcherHandle* raw = owner.release();  // from here freed by BeginClose -> OnWakeClosed
  raw->shared = shared;
  // Nothing can fail any more: the listening fd changes hands here.
  shared->listen_fd = listen_fd;
  shared->main_wake = &raw->wake;
  RegisterDispatcher(shared);
  shared_ = shared;
  handle_ = raw;
  raw->object = this;
}

Dispatcher::~Dispatcher() {
  if (handle_ != nullptr) {
    handle_->object = nullptr;
    BeginClose(handle_);
  }
}

Napi::Value Dispatcher::Start(const Napi::CallbackInfo& info) {
  if (handle_ == nullptr || handle_->closing) throw Napi::Error::New(info.Env(), "dispatcher is closed");
  if (!handle_->started) {
    const char* failed_call = "";
    int err = StartAcceptThread(shared_, &failed_call);
    // An errno, with the call that failed (pipe2, pthread_create).
    if (err != 0) throw UvError(info.Env(), -err, failed_call);
    handle_->started = true;
  }
  return info.Env().Undefined();
}

Napi::Value Dispatcher::Close(const Napi::CallbackInfo& info) {
  if (handle_ != nullptr) BeginClose(handle_);
  return info.Env().Undefined();
}

Napi::Value Dispatcher::Ref(const Napi::CallbackInfo& info) {
  if (handle_ != nullptr && !handle_->closing) uv_ref(reinterpret_cast<uv_handle_t*>(&handle_->wake));
  return info.Env().Undefined();
}

Napi::Value Dispatcher::Unref(const Napi::CallbackInfo& info) {
  if (handle_ != nullptr && !handle_->closing) uv_unref(reinterpret_cast<uv_handle_t*>(&handle_->wake));
  return info.Env().Undefined();
}

Napi::Value Dispatcher::Id(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), shared_->id); }

namespace {

// Per worker slot, what Stats reports.
struct SlotView {
  SlotTotals totals;
  double queued = 0;
  bool taking = false;
};

// The dispatcher's books, copied under its lock: one consistent picture, and no JS object is
// built (which can run the garbage collector, and finalizers that take locks) while the accept
// thread and the workers wait for the mutex.
struct StatsView {
  AcceptBooks books;
  uint64_t dropped = 0;
  size_t stranded = 0;
  uint64_t queue_full_pauses = 0;
  bool shedding = false;
  size_t addresses_in_use = 0;
  uint64_t events_dropped = 0;
  std::map<int, SlotView> slots;
};

StatsView CopyStats(DispatchShared& shared) {
  StatsView view;
  std::lock_guard<std::mutex> lock(shared.mutex);
  view.books = shared.books;
  view.dropped = shared.dropped;
  view.stranded = shared.stranded;
  view.queue_full_pauses = shared.queue_full_pauses;
  view.shedding = shared.max_queued >= 0;
  view.addresses_in_use = shared.addresses.InUse();
  view.events_dropped = shared.events_dropped;
  for (const auto& retired : shared.retired) view.slots[retired.first].totals = retired.second;
  for (const auto& queue : shared.members) {
    std::lock_guard<std::mutex> queue_lock(queue->mutex);
    SlotView& slot = view.slots[queue->slot];
    slot.totals.dispatched += queue->dispatched;
    slot.totals.closed_here += queue->closed_here;
    for (size_t i = 0; i < kPublishedCount; i++) slot.totals.published[i] += queue->published[i];
    slot.queued += static_cast<double>(queue->pending.size() + queue->delivering);
    slot.taking = slot.taking || queue->open;
  }
  return view;
}

}  // namespace

Napi::Value Dispatcher::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const StatsView view = CopyStats(*shared_);
  Napi::Object stats = Napi::Object::New(env);
  SetAcceptCounts(env, stats, view.books);
  stats.Set("dropped", Napi::Number::New(env, static_cast<double>(view.dropped)));
  stats.Set("stranded", Napi::Number::New(env, static_cast<double>(view.stranded)));
  stats.Set("admissionPauses", Napi::Number::New(env, static_cast<double>(view.books.admission_pauses)));
  stats.Set("queueFullPauses", Napi::Number::New(env, static_cast<double>(view.queue_full_pauses)));
  // sheddingCpuMs only with maxQueuedConnections.
  SetRejections(env, stats, view.books, view.shedding);
  stats.Set("addressesInUse", Napi::Number::New(env, static_cast<double>(view.addresses_in_use)));
  stats.Set("eventsDropped", Napi::Number::New(env, static_cast<double>(view.events_dropped)));
  Napi::Object slots = Napi::Object::New(env);
  for (const auto& entry : view.slots) {
    Napi::Object slot = Napi::Object::New(env);
    slot.Set("dispatched", Napi::Number::New(env, static_cast<double>(entry.second.totals.dispatched)));
    slot.Set("closedByQueue", Napi::Number::New(env, static_cast<double>(entry.second.totals.closed_here)));
    slot.Set("queued", Napi::Number::New(env, entry.second.queued));
    slot.Set("taking", Napi::Boolean::New(env, entry.second.taking));
    slot.Set("published", PublishedObject(env, entry.second.totals.published));
    slots.Set(Napi::Number::New(env, entry.first).ToString(), slot);
  }
  stats.Set("slots", slots);
  stats.Set("closed", Napi::Boolean::New(env, handle_ == nullptr || handle_->closing));
  return stats;
}

Napi::Value Dispatcher::Address(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (handle_ == nullptr || handle_->closing) return env.Null();
  return LocalAddressValue(env, shared_->listen_fd);
}

}  // namespace ntl
