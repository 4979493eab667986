// Wrapping an accepted descriptor the way net.Server wraps the connections it accepts: a TCP
// handle opened on the descriptor, given to net.Socket as its `handle`.
//
// The handle is opened here, not by `new net.Socket({ fd })`, so that the batch slot can say
// "settled" the instant the handle owns the descriptor (src/accept/batch_slots.ts), and so that
// the three system calls `{ fd }` makes first (uv_guess_handle: fstat, getsockopt(SO_TYPE),
// getsockname) are saved. Node exports no constructor for its TCP handle: src/node_internals.ts
// takes it from a probe socket; where it is not the TCP handle this expects, every descriptor
// takes the `{ fd }` path.
import net from 'node:net';
import { tcpHandleConstructor } from '../node_internals.js';
import { systemError } from '../errors.js';
import { SLOT_SETTLED } from './batch_slots.js';
import type { BatchSlot } from './batch_slots.js';

/** tcp_wrap's TCPConstants.SOCKET: a connection's handle, not a server's. */
const TCP_SOCKET = 0;

/**
 * A net.Socket that owns `fd`, an accepted TCP connection; `slot`, when given, is marked
 * settled the instant the socket's handle owns it. Throws, leaving `fd` open and owned by no
 * handle, when the descriptor cannot be opened; throws with the descriptor closed (by its
 * handle, the slot settled) should the socket fail after that.
 */
export function wrapAcceptedDescriptor(fd: number, slot?: BatchSlot): net.Socket {
  const tcpHandle = tcpHandleConstructor();
  if (tcpHandle === null) {
    // Node opens the handle inside the constructor: it throws only before the handle has the
    // descriptor (an unknown type, a failed open), so the slot is settled when it returns.
    const socket = new net.Socket({ fd, readable: true, writable: true });
    if (slot !== undefined) slot.slots[slot.index] = SLOT_SETTLED;
    return socket;
  }
  const handle = new tcpHandle(TCP_SOCKET);
  const err = handle.open(fd);
  if (err !== 0) {
    // The handle never had the descriptor: closing it leaves the descriptor as it was.
    handle.close();
    throw systemError(-err, 'open');
  }
  // No call between open() and this store (see batch_slots.ts).
  if (slot !== undefined) slot.slots[slot.index] = SLOT_SETTLED;
  try {
    return new net.Socket({ handle, readable: true, writable: true } as net.SocketConstructorOpts);
  } catch (error) {
    // The handle owns the descriptor and the slot says so: the handle closes it, nobody else.
    handle.close();
    throw error;
  }
}
