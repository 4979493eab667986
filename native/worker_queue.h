// A worker thread's end of the hand-off: the accept thread pushes descriptors onto this
// queue and wakes the worker's loop with one uv_async_send per batch; the wake-up hands them
// all to JS in one MakeCallback, with the batch slot protocol of native/acceptor.h deciding
// afterwards which of them the queue still owns and closes.
//
// When the worker ends (close(), terminate(), process.exit() in it, an uncaught error) the
// environment's cleanup hook closes the queue: every descriptor still queued for it is closed
// and counted, and its books are folded into its slot (dispatch_state.h, RetireQueue).
#pragma once

#include <napi.h>
#include <uv.h>

#include <memory>

#include "dispatch_state.h"

namespace ntl {

struct QueueHandle;

class WorkerQueue : public Napi::ObjectWrap<WorkerQueue> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new WorkerQueue(dispatcherId, slot, onBatch(fds: Int32Array, addressSlots?: Int32Array))
  explicit WorkerQueue(const Napi::CallbackInfo& info);
  ~WorkerQueue() override;

  void Detach() { handle_ = nullptr; }

 private:
  // close(): takes nothing more; what is still queued is closed and counted.
  Napi::Value Close(const Napi::CallbackInfo& info);
  // publish(counters: Float64Array) in the order of PublishedCounter.
  Napi::Value Publish(const Napi::CallbackInfo& info);
  // releaseAddress(slot): a connection counted in a per-address slot (from a batch's second
  // array, or admitClient) was released: true, or false when this queue holds none there.
  Napi::Value ReleaseAddress(const Napi::CallbackInfo& info);
  // admitClient(address): with proxyProtocol, counts the client a PROXY header named against
  // maxConnectionsPerAddress for the listener as a whole: its slot (>= 0), -2 when that address
  // is at the limit (close the connection), -1 when not counted (no limit, not an address).
  Napi::Value AdmitClient(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);

  QueueHandle* handle_ = nullptr;
  // Kept past close(): the worker publishes its books until its last connection has closed.
  std::shared_ptr<DispatchShared> dispatcher_;
  std::shared_ptr<QueueShared> queue_;
};

}  // namespace ntl
