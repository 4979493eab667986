// maxConnectionsPerAddress behind a PROXY protocol balancer. The acceptor's own per-address
// count (C++ at accept, or net.Server's callback) sees the socket's peer, which there is the
// balancer: every client would share one count. A listener with proxyProtocol counts the
// client the header names instead, once the header is read, by the same rule as everywhere
// (src/accept/address_key.ts): a LOCAL header (the balancer's own health check) and a unix
// client are not limited.
import { AddressCounts } from '../accept/address_counts.js';
import type { AddressRejection } from '../accept/address_counts.js';
import { perAddressKey } from '../accept/address_key.js';

/**
 * Where the per-address counts live: this thread's table by default; with workers, the
 * listener's table in the addon, shared by every worker (src/workers/).
 */
export interface ClientAddressCounts {
  /** Counts one connection from `key` in: how to count it out, or why it is refused. */
  admit(key: string): (() => void) | AddressRejection;
}

/** What the header said about the client (src/proxy/proxy_setup.ts ProxyConnectionInfo). */
export interface HeaderClient {
  command: 'proxy' | 'local';
  family: 'IPv4' | 'IPv6' | 'unix' | undefined;
  remoteAddress: string | undefined;
}

export class ClientAddressLimit {
  private readonly counts: ClientAddressCounts;

  constructor(
    limit: number,
    private readonly ipv6Prefix: number,
    /** Absent: this thread's own table of `capacity` addresses. */
    counts?: ClientAddressCounts,
    capacity?: number,
  ) {
    this.counts = counts ?? new AddressCounts(limit, capacity);
  }

  /**
   * Counts a connection from the header's client in; the registry counts it out, once, when it
   * releases the connection (src/accept/admission.ts), not a 'close' listener of its own, which
   * a handler holding the socket could remove. Null when admitted (or not limited); else why it
   * is refused, counting nothing.
   */
  admit(client: HeaderClient, connection: { addressRelease?: (() => void) | undefined }): AddressRejection | null {
    if (client.command !== 'proxy' || (client.family !== 'IPv4' && client.family !== 'IPv6')) return null;
    const key = perAddressKey(client.remoteAddress, this.ipv6Prefix);
    if (key === null) return null;
    const admitted = this.counts.admit(key);
    if (typeof admitted === 'string') return admitted;
    connection.addressRelease = admitted;
    return null;
  }
}
