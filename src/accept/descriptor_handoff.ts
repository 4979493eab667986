// The hand-off of a native batch: each accepted descriptor is wrapped in a socket that owns it
// (or handed back to the acceptor), and each slot of the batch says who owns its descriptor.
//
// Slot states, written for the acceptor (see native/acceptor.h):
//  - >= 0 untouched: the acceptor's, closed by it when the batch callback returns;
//  - -1 taken: being wrapped; closed by the acceptor only if the callback is cut short (a
//    worker terminated) before a socket's handle came to own it;
//  - -2 settled: a socket's handle owns it (or, for an adopter that returned null, the adopter);
//  - -3 returned: wrapping threw; the acceptor closes it after the batch unless a libuv handle
//    on this thread has it (an adopter may have wrapped it before it threw). Never closed here.
import type net from 'node:net';
import { debug } from '../diagnostics.js';
import { wrapAcceptedDescriptor } from './socket_wrap.js';

/**
 * Wraps an accepted descriptor in a socket that owns it. It may instead return null, meaning
 * "taken, not wrapped": the adopter keeps the descriptor for itself, and the listener neither
 * tracks nor closes it, so it counts as `leaked` (and shows in audit().untracked on Linux).
 * That is the seam a test uses to lose a descriptor between accept and registration.
 * If it throws, the descriptor goes back to the acceptor, which closes it unless a socket on
 * this thread holds it; so an adopter that throws must not have closed it (nor destroyed a
 * socket it wrapped it in), or the number would be closed a second time.
 */
export type DescriptorAdopter = (fd: number) => net.Socket | null;

export const adoptDescriptor: (fd: number) => net.Socket = wrapAcceptedDescriptor;

const SLOT_TAKEN = -1;
const SLOT_SETTLED = -2;
const SLOT_RETURNED = -3;

/** Where each descriptor of a batch goes once its slot says who owns it. */
export interface HandOffSink {
  /** A socket's handle owns `fd` (slot `index` of the batch) now: track it as connection `id`. */
  wrapped(id: number, socket: net.Socket, fd: number, index: number): void;
  /** Wrapping threw; the acceptor has the descriptor back and closes it. */
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
    // TAKEN: from here the acceptor closes this descriptor only if the callback is cut short
    // (a worker terminated) before a socket's handle came to own it.
    fds[i] = SLOT_TAKEN;
    let socket: net.Socket | null;
    try {
      socket = adopt(fd);
    } catch (error) {
      // RETURNED: the acceptor closes it after the batch unless a handle owns it by now.
      fds[i] = SLOT_RETURNED;
      sink.returned(fd, id, error);
      continue;
    }
    // SETTLED: the socket's handle owns it (or, for null, the adopter does). No call sits
    // between adopt() returning and this store, so termination cannot land in between.
    fds[i] = SLOT_SETTLED;
    if (socket === null) {
      debug('descriptor %d was taken by the adopter: neither tracked nor closed here', fd);
      continue;
    }
    sink.wrapped(id, socket, fd, i);
  }
}
