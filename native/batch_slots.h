// The batch slot protocol of native/acceptor.h, for the acceptor and the worker queues alike:
// after a batch callback, which descriptors the native side still owns and must close.
#pragma once

#include <uv.h>

#include <cstdint>

namespace ntl {

constexpr int32_t kBatchSlotTaken = -1;
constexpr int32_t kBatchSlotSettled = -2;
constexpr int32_t kBatchSlotReturned = -3;

// True when a libuv stream handle on `loop` has `fd` open (and so will close it).
bool OwnedByLoopHandle(uv_loop_t* loop, int fd);

// Whether `accepted`, handed over in a slot JS left as `slot`, is still ours to close.
// `completed`: the callback ran to its end.
bool ShouldCloseAfterBatch(uv_loop_t* loop, int32_t slot, int accepted, bool completed);

}  // namespace ntl
