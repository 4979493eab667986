// What maxConnectionsPerAddress counts a connection under: the one rule in TS, for the js
// backend and the PROXY protocol stage (native/address_key.h is the same rule in C++ for the
// native drivers; test/fixtures/address_keys.json holds the cases both are tested against).
//   IPv4                 -> itself
//   IPv4-mapped IPv6     -> its IPv4 address (a v4 client of a dual-stack socket)
//   any other IPv6       -> its first `ipv6Prefix` bits (default /64: a host picks any
//                           address of its /64 at no cost, so the subnet is the client)
//   anything else        -> null: not limited (a unix socket's peer, a PROXY LOCAL or unix header)
import net from 'node:net';
import { ipv6Text } from '../proxy/ip_text.js';

/** The IPv6 bits that make a key unless perAddressIPv6Prefix says otherwise. */
export const DEFAULT_IPV6_PREFIX = 64;

/** An IPv6 address's 16 bytes (text net.isIPv6 accepted, zone already removed). */
function ipv6Bytes(text: string): Uint8Array {
  const bytes = new Uint8Array(16);
  let groupsText = text;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    // An embedded IPv4 address: its two groups, after what comes before it.
    const [a = 0, b = 0, c = 0, d = 0] = text.slice(lastColon + 1).split('.').map(Number);
    tail.push((a << 8) | b, (c << 8) | d);
    groupsText = text.endsWith('::', lastColon + 1) ? text.slice(0, lastColon + 1) : text.slice(0, lastColon);
  }
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const gap = groupsText.indexOf('::');
  const head = parse(gap < 0 ? groupsText : groupsText.slice(0, gap));
  const rest = gap < 0 ? [] : parse(groupsText.slice(gap + 2));
  const zeros = 8 - head.length - rest.length - tail.length;
  const groups = [...head, ...new Array<number>(Math.max(zeros, 0)).fill(0), ...rest, ...tail];
  groups.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}

/**
 * The key `address` (a socket's remoteAddress or a PROXY header's client) counts under, as
 * text ('10.0.0.1', '2001:db8:1:2::'), or null when it is not limited.
 */
export function perAddressKey(address: string | undefined, ipv6Prefix: number = DEFAULT_IPV6_PREFIX): string | null {
  if (address === undefined) return null;
  if (net.isIPv4(address)) return address;
  // A zone ('fe80::1%eth0') is not part of the address: accept()'s scope id is not either.
  const bare = address.includes('%') ? address.slice(0, address.indexOf('%')) : address;
  if (!net.isIPv6(bare)) return null;
  const bytes = ipv6Bytes(bare);
  if (bytes.subarray(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  for (let i = 0; i < 16; i++) {
    const bits = ipv6Prefix - 8 * i;
    const mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : (0xff << (8 - bits)) & 0xff;
    bytes[i] = (bytes[i] ?? 0) & mask;
  }
  return ipv6Text(bytes, 0);
}
