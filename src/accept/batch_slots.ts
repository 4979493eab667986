// The batch slot protocol's states on this side (native/batch_slots.h has the same numbers, and
// native/acceptor.h who owns a descriptor in each). The slot alone tells the native side what to
// close after a batch, so it must say "settled" from the instant a libuv handle owns the
// descriptor: whoever opens the handle (socket_wrap.ts, the direct TLS socket) stores SETTLED
// in its slot right after open() succeeds, in the same function, before any other call.
// A call in between could throw, or be where a terminated worker stops, leaving the slot
// "taken" for a descriptor a handle will close too.

/** JS is wrapping the descriptor; no handle has it yet. */
export const SLOT_TAKEN = -1;
/** A libuv handle owns the descriptor (or an adopter kept it): the native side never touches it. */
export const SLOT_SETTLED = -2;
/** No handle took the descriptor: the native side closes it. */
export const SLOT_RETURNED = -3;

/** One descriptor's slot in a batch: where its adopter marks it settled. */
export interface BatchSlot {
  readonly slots: Int32Array;
  readonly index: number;
}
