// The one way the addon calls into JS from a libuv callback (the acceptor's batches and events,
// a worker queue's batches, the dispatcher's events, the ClientHello peeker's hellos): plain
// N-API calls, each status checked.
// Once the environment can no longer run JS (a worker being terminated still finishes its
// current loop turn, before the cleanup hooks run), N-API calls fail, and node-addon-api would
// turn that into a C++ exception (std::terminate from a C callback) or, building the
// Napi::Error itself, a fatal error. Here a failed call just means: JS took nothing.
#pragma once

#include <node_api.h>

#include <cstddef>
#include <cstdint>

namespace ntl {

// Calls the function `callback` refers to with napi_make_callback in `context`. True when it
// ran to its end; false when it threw (reported as uncaught, as Node reports an exception from
// any I/O callback: the JS side catches its own errors, so this is a bug there) or when JS
// cannot run any more. `reached`, when given, says whether the function ran at all (to its end
// or until it threw): what a caller handing something over to it needs to know.
inline bool CallJsCallback(napi_env env, napi_async_context context, napi_ref callback, size_t argc, const napi_value* argv,
                           bool* reached = nullptr) {
  if (reached != nullptr) *reached = false;
  napi_value global = nullptr;
  napi_value function = nullptr;
  napi_value result = nullptr;
  if (callback == nullptr || napi_get_global(env, &global) != napi_ok) return false;
  if (napi_get_reference_value(env, callback, &function) != napi_ok || function == nullptr) return false;
  napi_status status = napi_make_callback(env, context, global, function, argc, argv, &result);
  if (reached != nullptr) *reached = status == napi_ok || status == napi_pending_exception;
  if (status == napi_ok) return true;
  bool pending = false;
  napi_value error = nullptr;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending && napi_get_and_clear_last_exception(env, &error) == napi_ok &&
      error != nullptr) {
    // Fails only when JS cannot run any more, and then nobody is left to tell.
    (void)napi_fatal_exception(env, error);
  }
  return false;
}

// onEvent(kind, errno, delayMs): the one shape both accept drivers report an event in (the
// kinds: accept_options.h), in a handle scope of its own. False when JS took nothing.
inline bool CallEventCallback(napi_env env, napi_async_context context, napi_ref callback, int32_t kind, int32_t err,
                              uint64_t delay_ms) {
  napi_handle_scope scope = nullptr;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return false;
  napi_value args[3] = {nullptr, nullptr, nullptr};
  bool called = napi_create_int32(env, kind, &args[0]) == napi_ok && napi_create_int32(env, err, &args[1]) == napi_ok &&
                napi_create_double(env, static_cast<double>(delay_ms), &args[2]) == napi_ok &&
                CallJsCallback(env, context, callback, 3, args);
  // Fails only for a scope that is not the innermost; nothing here opens another.
  (void)napi_close_handle_scope(env, scope);
  return called;
}

// Around a call into JS and whatever reads its results (a batch's slots), for a handle whose
// close() can run inside that call (a handler or an `accept` subscriber closing the listener):
// the JS values the call uses (callbacks, arrays, async context) are released when the
// outermost guard ends, never under the call. `Owner` has `int callbacks_running` and `bool
// release_deferred`; its close path asks DeferRelease() before releasing, and `Release` resets
// release_deferred. One pattern for the acceptor's loop and a worker's queue.
template <typename Owner, void (*Release)(Owner*)>
class CallbackGuard {
 public:
  explicit CallbackGuard(Owner* owner) : owner_(owner) { owner_->callbacks_running++; }
  ~CallbackGuard() {
    if (--owner_->callbacks_running == 0 && owner_->release_deferred) Release(owner_);
  }
  CallbackGuard(const CallbackGuard&) = delete;
  CallbackGuard& operator=(const CallbackGuard&) = delete;

 private:
  Owner* owner_;
};

// For a close path: true (and the release left to the outermost guard) while a call into JS is
// under way; false when the JS values can be released now.
template <typename Owner>
bool DeferRelease(Owner* owner) {
  if (owner->callbacks_running == 0) return false;
  owner->release_deferred = true;
  return true;
}

}  // namespace ntl
