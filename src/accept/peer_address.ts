// The peer's address the native acceptor read with accept4() itself, given to the socket
// that wraps the descriptor, so that reading socket.remoteAddress/remotePort costs no
// getpeername() call. net.Socket caches the peer in `_peername` (lib/net.js `_getpeername`
// returns it when set and only asks the handle otherwise), in exactly this shape; where it does
// not (src/node_internals.ts probes it), Node asks the handle as usual.
//
// The acceptor hands the peers over as numbers (native/peer_words.h has the layout and why):
// an IPv4 address, or an IPv4-mapped IPv6 one, is written out here; the text of any other
// IPv6 address comes from inet_ntop in the addon.
import type net from 'node:net';
import type { PeerAddress } from '../native/binding.js';
import { primePeerName } from '../node_internals.js';

/** Words per peer in the acceptor's peer array (native/peer_words.h kPeerWords). */
export const PEER_WORDS = 3;

/** native/peer_words.h PeerKind. */
const PeerKind = { IPv4: 1, IPv4Mapped: 2, IPv6: 3 } as const;

/** A batch's peers as the acceptor hands them over. */
export interface BatchPeers {
  words: Int32Array;
  /** The text of each IPv6 peer that is not IPv4-mapped, at its index; undefined when there is none. */
  ipv6Texts: ReadonlyArray<string | undefined> | undefined;
}

/** Dotted-quad text of an IPv4 address given as the bits of its host-order value. */
function ipv4Text(bits: number): string {
  return `${bits >>> 24}.${(bits >>> 16) & 255}.${(bits >>> 8) & 255}.${bits & 255}`;
}

/** Descriptor `index`'s peer, as Node's socket._peername; null for a family that is not IP. */
export function peerAddressAt(peers: BatchPeers, index: number): PeerAddress | null {
  const base = index * PEER_WORDS;
  const { words } = peers;
  const kind = words[base];
  const port = words[base + 1] ?? 0;
  if (kind === PeerKind.IPv4) return { address: ipv4Text(words[base + 2] ?? 0), family: 'IPv4', port };
  // inet_ntop and Node's getpeername write these as ::ffff:a.b.c.d.
  if (kind === PeerKind.IPv4Mapped) return { address: `::ffff:${ipv4Text(words[base + 2] ?? 0)}`, family: 'IPv6', port };
  if (kind === PeerKind.IPv6) {
    const text = peers.ipv6Texts?.[index];
    return text === undefined ? null : { address: text, family: 'IPv6', port };
  }
  return null;
}

export function primePeerAddress(socket: net.Socket, peer: PeerAddress | null): void {
  if (peer !== null) primePeerName(socket, peer);
}
