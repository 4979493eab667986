// The batch slot protocol of native/acceptor.h, for the acceptor and the worker queues alike:
// after a batch callback, which descriptors the native side still owns and must close. The
// slot alone says so: JS marks a slot settled the instant a libuv handle owns its descriptor
// (src/accept/batch_slots.ts), so nothing here ever looks at which descriptors are open.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace ntl {

constexpr int32_t kBatchSlotTaken = -1;
constexpr int32_t kBatchSlotSettled = -2;
constexpr int32_t kBatchSlotReturned = -3;

// Whether the descriptor accept() returned for a slot JS left as `slot` is still ours to close:
// every state but settled (untouched, taken, returned, or a value outside the protocol) means
// no handle owns it. Decided about the accepted descriptor, never about the number in the slot.
inline bool ClosedAfterBatch(int32_t slot) { return slot != kBatchSlotSettled; }

// The first `count` slots of `array`, the Int32Array handed to JS, read from the value itself
// (kept alive by the caller's handle scope for the whole batch, whatever JS or a re-entrant
// close() did to any reference to it); nullptr when JS detached its buffer (transferred it).
int32_t* BatchSlotsOf(napi_env env, napi_value array, size_t count);

}  // namespace ntl
