// Which peers may send a PROXY protocol header: addresses and CIDR ranges, IPv4 and IPv6, in
// a net.BlockList. A v4 client of a dual-stack socket ('::ffff:10.0.0.1') is its IPv4
// address, in the list and in the check, so '10.0.0.0/8' covers it either way.
import net from 'node:net';
import { codedError, ErrorCodes } from '../errors.js';

const V4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/**
 * Verdicts kept, by peer address. net.BlockList.check() builds a SocketAddress (a native
 * object) per call: about 8 µs per connection in a profile at 64 in flight, where a listener
 * behind a balancer sees the same few proxy addresses over and over. Any peer may connect, so
 * the table is bounded: it is emptied when full.
 */
const MAX_REMEMBERED_PEERS = 1024;

/** The address with an IPv4-mapped IPv6 form read as IPv4, and its family; undefined if not an IP. */
function normalized(address: string): { address: string; family: 'ipv4' | 'ipv6' } | undefined {
  const mapped = V4_MAPPED.exec(address)?.[1];
  if (mapped !== undefined && net.isIPv4(mapped)) return { address: mapped, family: 'ipv4' };
  if (net.isIPv4(address)) return { address, family: 'ipv4' };
  if (net.isIPv6(address) && !address.includes('%')) return { address, family: 'ipv6' };
  return undefined;
}

export class TrustedProxies {
  private readonly list = new net.BlockList();
  private readonly verdicts = new Map<string, boolean>();

  /** Throws ERR_INVALID_OPTION naming the first entry that is not an address or a CIDR range. */
  constructor(entries: unknown) {
    if (!Array.isArray(entries) || entries.length === 0) {
      throw codedError(ErrorCodes.INVALID_OPTION, 'trustedProxies must be a non-empty array of addresses and CIDR ranges when proxyProtocol is on');
    }
    for (const entry of entries) this.add(entry);
  }

  private add(entry: unknown): void {
    const bad = (): Error => codedError(ErrorCodes.INVALID_OPTION, `trustedProxies: ${JSON.stringify(entry)} is not an IP address or CIDR range`);
    if (typeof entry !== 'string') throw bad();
    const slash = entry.indexOf('/');
    const ip = normalized(slash < 0 ? entry : entry.slice(0, slash));
    if (ip === undefined) throw bad();
    if (slash < 0) {
      this.list.addAddress(ip.address, ip.family);
      return;
    }
    const prefixText = entry.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(prefixText)) throw bad();
    let prefix = Number(prefixText);
    // '::ffff:10.0.0.0/104' is '10.0.0.0/8'.
    if (ip.family === 'ipv4' && V4_MAPPED.test(entry.slice(0, slash))) prefix -= 96;
    if (prefix < 0 || prefix > (ip.family === 'ipv4' ? 32 : 128)) throw bad();
    this.list.addSubnet(ip.address, prefix, ip.family);
  }

  /** Whether a connection from `address` (a socket's remoteAddress) may send a header. */
  allows(address: string | undefined): boolean {
    if (address === undefined) return false;
    const known = this.verdicts.get(address);
    if (known !== undefined) return known;
    const ip = normalized(address);
    const verdict = ip !== undefined && this.list.check(ip.address, ip.family);
    if (this.verdicts.size >= MAX_REMEMBERED_PEERS) this.verdicts.clear();
    this.verdicts.set(address, verdict);
    return verdict;
  }
}
