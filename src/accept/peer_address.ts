// The peer's address the native acceptor read with accept4() itself, given to the socket
// that wraps the descriptor, so that reading socket.remoteAddress/remotePort costs no
// getpeername() call. net.Socket caches the peer in `_peername` (lib/net.js `_getpeername`
// returns it when set and only asks the handle otherwise), in exactly this shape.
import type net from 'node:net';
import type { PeerAddress } from '../native/binding.js';

export function primePeerAddress(socket: net.Socket, peer: PeerAddress | null | undefined): void {
  if (peer === null || peer === undefined) return;
  const cache = socket as unknown as { _peername?: PeerAddress };
  // Only a socket that has not looked its peer up yet: an adopter may have done so already.
  if (cache._peername === undefined || cache._peername === null) cache._peername = peer;
}
