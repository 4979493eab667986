// The main thread's handle on an accept thread that feeds worker threads (dispatch_state.h has
// the shared state and who owns which descriptor). Events of the accept thread (retries,
// pauses, a fatal errno) reach JS here, one uv_async wake-up and one MakeCallback per event.
//
// The listening fd stays the caller's until `new Dispatcher()` returns; a constructor that
// throws has not taken it. From then on close() (or the environment's teardown) closes it,
// after the accept thread has stopped: the port is free when close() returns.
#pragma once

#include <napi.h>
#include <uv.h>

#include <memory>

#include "dispatch_state.h"

namespace ntl {

struct DispatcherHandle;

class Dispatcher : public Napi::ObjectWrap<Dispatcher> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new Dispatcher(listenFd, onEvent(kind, errno, delayMs), options)
  explicit Dispatcher(const Napi::CallbackInfo& info);
  ~Dispatcher() override;

  // The main loop's side has finished closing (close(), or the environment's teardown).
  void Detach() { handle_ = nullptr; }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Address(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Id(const Napi::CallbackInfo& info);

  std::shared_ptr<DispatchShared> shared_;
  DispatcherHandle* handle_ = nullptr;  // the main loop's side; freed once its uv_async has closed
};

}  // namespace ntl
