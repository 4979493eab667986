// A TLSSocket opened straight on an accepted descriptor, with no net.Socket under it.
//
// tls.Server (and this package until now) wraps every accepted connection twice: a net.Socket
// owns the descriptor, and a TLSSocket is built on top of it. A TLSSocket made without a socket
// instead makes its own TCP handle under its TLS layer, the way tls.connect() makes a client's;
// opening the accepted descriptor on that handle (`open` is one of the methods Node's TLS layer
// passes on to the handle under it) gives a server connection that is one socket, not two.
// Measured at one client at a time (Node 20, perf and alternating runs): about 12% less server
// CPU per connection than the two-socket wrap, which is the cost of a whole net.Socket (a
// Duplex stream, its listeners, its close) per connection.
//
// Such a socket starts out "connecting" (Node assumes tls.connect() is about to connect it),
// which would hold back its first read and writes until a 'connect' that never comes; the
// descriptor is connected already, so that flag is cleared. Node starts reading on the next
// tick, after the caller has added its listeners, exactly as for a wrapped socket.
//
// Where a Node does not have that method on its TLS layer, or `connecting` cannot be cleared
// (src/node_internals.ts probes both once), openTlsSocket returns null and the caller wraps
// the descriptor the usual way.
import type net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { systemError } from '../errors.js';
import { markConnected, openUnderTlsLayer, setServerAlpn, tlsLayerAlpnWorks, tlsLayerOpenWorks } from '../node_internals.js';
import { SLOT_SETTLED } from '../accept/batch_slots.js';
import type { BatchSlot } from '../accept/batch_slots.js';

/** Sockets opened here: their TLS setup is under way, and nothing sits under them. */
const opened = new WeakSet<tls.TLSSocket>();

/**
 * A server TLSSocket that owns `fd`, an accepted TCP connection; null where this Node cannot
 * make one (then `fd` is untouched). Throws, leaving `fd` open and owned by no handle, when the
 * descriptor cannot be opened. `slot`, when given, is marked settled the instant the socket's
 * handle owns the descriptor (src/accept/batch_slots.ts).
 */
export function openTlsSocket(fd: number, options: tls.TLSSocketOptions, slot?: BatchSlot): tls.TLSSocket | null {
  if (!tlsLayerOpenWorks()) return null;
  // Node's types want a socket; without one, the TLSSocket makes its own TCP handle.
  const socket = new tls.TLSSocket(undefined as unknown as net.Socket, options);
  return openOnDescriptor(socket, fd, slot) ? socket : null;
}

/**
 * Opens `socket` (made without a socket, so with its own TCP handle) on `fd`: true once its
 * handle owns `fd`, marking `slot` settled that instant; false, with the socket destroyed and
 * `fd` untouched, when the TLS layer passed open() on to nothing. Throws, with the socket
 * destroyed and `fd` open and owned by no handle, when the descriptor cannot be opened.
 */
function openOnDescriptor(socket: tls.TLSSocket, fd: number, slot?: BatchSlot): boolean {
  const err = openUnderTlsLayer(socket, fd);
  // No call between open() and this store (see batch_slots.ts).
  if (err === 0 && slot !== undefined) slot.slots[slot.index] = SLOT_SETTLED;
  if (err === null) {
    // The TLS layer passed it on to nothing (the probe said it would): the descriptor was not touched.
    socket.destroy();
    return false;
  }
  if (err !== 0) {
    // The handle never had the descriptor: destroying the socket closes only the handle.
    socket.destroy();
    throw systemError(-err, 'open');
  }
  markConnected(socket);
  opened.add(socket);
  return true;
}

/**
 * A server TLSSocket made before it has a descriptor, for a connection whose ClientHello is
 * still on its way (src/tls/tls_setup.ts, prepareSocket); null where this Node cannot open one
 * later or set its protocols then. It stays "connecting", so Node holds back its first read
 * (net.Socket's _read waits for 'connect'); it owns no descriptor, and destroying it closes
 * only its own handle.
 */
export function prepareTlsSocket(options: tls.TLSSocketOptions): tls.TLSSocket | null {
  if (!tlsLayerOpenWorks() || !tlsLayerAlpnWorks()) return null;
  return new tls.TLSSocket(undefined as unknown as net.Socket, options);
}

/**
 * Opens a prepared socket on `fd` (an accepted connection whose hello was peeked), offering
 * `alpn` (wire format) when given, and starts its reading. Throws, with the socket destroyed
 * and `fd` open and owned by no handle, when the descriptor cannot be opened.
 */
export function openPreparedTlsSocket(socket: tls.TLSSocket, fd: number, alpn: Buffer | undefined): tls.TLSSocket {
  try {
    // Before the first read: OpenSSL chooses from this list when it reads the hello.
    if (alpn !== undefined) setServerAlpn(socket, alpn);
  } catch (error) {
    socket.destroy();
    throw error;
  }
  // Nothing taking it is an error here: the socket was made for this descriptor.
  if (!openOnDescriptor(socket, fd)) throw systemError(os.constants.errno.EBADF, 'open');
  // Node's first read, a tick after the socket was made, waited for the 'connect' a socket made
  // connecting gets: this is it (net.Socket's _read then starts reading the handle).
  if (socket.listenerCount('connect') > 0) socket.emit('connect');
  return socket;
}

/** Whether `socket` was opened by openTlsSocket (its TLS layer is its own). */
export function isOpenedTlsSocket(socket: object): socket is tls.TLSSocket {
  return opened.has(socket as tls.TLSSocket);
}
