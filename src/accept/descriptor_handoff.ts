// The hand-off of a native batch: each accepted descriptor is wrapped in a socket that owns it
// (or handed back to the acceptor), and each slot of the batch says who owns its descriptor.
//
// Slot states (src/accept/batch_slots.ts; native/acceptor.h for the native side):
//  - >= 0 untouched: the acceptor's, closed by it when the batch callback returns;
//  - -1 taken: being wrapped, no handle has it yet; closed by the acceptor if the callback
//    ends (is cut short, e.g. a worker terminated) with the slot still so;
//  - -2 settled: a socket's handle owns it, set by whoever opened the handle the instant it
//    did (or, for an adopter that returned, by the hand-off: the adopter owns it);
//  - -3 returned: no handle took it (wrapping threw first); the acceptor closes it after the
//    batch. Never closed here.
import type net from 'node:net';
import { debug } from '../diagnostics.js';
import { wrapAcceptedDescriptor } from './socket_wrap.js';
import { SLOT_RETURNED, SLOT_SETTLED, SLOT_TAKEN } from './batch_slots.js';
import type { BatchSlot } from './batch_slots.js';

export type { BatchSlot } from './batch_slots.js';

/**
 * Wraps an accepted descriptor in a socket that owns it. It may instead return null, meaning
 * "taken, not wrapped": the adopter keeps the descriptor for itself, and the listener neither
 * tracks nor closes it, so it counts as `leaked` (and shows in audit().untracked on Linux).
 * That is the seam a test uses to lose a descriptor between accept and registration.
 * `slot` is the descriptor's batch slot: whatever opens a libuv handle on the descriptor marks
 * it settled the moment the handle owns it (adoptDescriptor(fd, slot) does). If the adopter
 * throws, the acceptor closes the descriptor unless the slot says settled; so an adopter that
 * throws after a handle took the descriptor must have passed the slot on (the handle then
 * closes it, once), and one that throws before must not have closed it.
 */
export type DescriptorAdopter = (fd: number, slot: BatchSlot) => net.Socket | null;

export const adoptDescriptor: (fd: number, slot?: BatchSlot) => net.Socket = wrapAcceptedDescriptor;

/** Where each descriptor of a batch goes once its slot says who owns it. */
export interface HandOffSink {
  /** A socket's handle owns `fd` (slot `index` of the batch) now: track it as connection `id`. */
  wrapped(id: number, socket: net.Socket, fd: number, index: number): void;
  /** Wrapping threw: the descriptor is closed, by the acceptor or by the handle that had it. */
  returned(fd: number, id: number, error: unknown): void;
}

/**
 * Hands every descriptor of a native batch (the first `count` slots of `fds`) over; ids come
 * from `ids`, one per descriptor.
 */
export function handOffBatch(fds: Int32Array, count: number, adopt: DescriptorAdopter, ids: { nextId(): number }, sink: HandOffSink): void {
  for (let i = 0; i < count; i++) {
    const fd = fds[i] as number;
    const id = ids.nextId();
    // TAKEN: no handle has it yet; the adopter marks the slot settled the instant one does.
    fds[i] = SLOT_TAKEN;
    let socket: net.Socket | null;
    try {
      socket = adopt(fd, { slots: fds, index: i });
    } catch (error) {
      // RETURNED, unless a handle took it first (the slot is settled then, and the handle
      // closes it): the acceptor closes it after the batch.
      if (fds[i] !== SLOT_SETTLED) fds[i] = SLOT_RETURNED;
      sink.returned(fd, id, error);
      continue;
    }
    // SETTLED (already, when the adopter opened a handle); for an adopter that returned
    // without a slot it knew of, it owns the descriptor now.
    fds[i] = SLOT_SETTLED;
    if (socket === null) {
      debug('descriptor %d was taken by the adopter: neither tracked nor closed here', fd);
      continue;
    }
    sink.wrapped(id, socket, fd, i);
  }
}
