// maxConnectionsPerAddress behind a PROXY protocol balancer. The acceptor's own per-address
// count (C++ at accept, or net.Server's callback) sees the socket's peer, which there is the
// balancer: every client would share one count. A listener with proxyProtocol counts the
// client the header names instead, once the header is read.
import type net from 'node:net';
import { addressKey } from '../accept/admission.js';

/**
 * Where the per-address counts live: this thread's map by default; with workers, the
 * listener's table in the addon, shared by every worker (src/workers/).
 */
export interface ClientAddressCounts {
  /** Counts one connection from `key` in: how to count it out, or null when `key` has `limit` already. */
  admit(key: string, limit: number): (() => void) | null;
}

/** The counts of one listener on one thread. */
export class LocalAddressCounts implements ClientAddressCounts {
  private readonly counts = new Map<string, number>();

  admit(key: string, limit: number): (() => void) | null {
    const count = this.counts.get(key) ?? 0;
    if (count >= limit) return null;
    this.counts.set(key, count + 1);
    return () => {
      const left = (this.counts.get(key) ?? 1) - 1;
      if (left > 0) this.counts.set(key, left);
      else this.counts.delete(key);
    };
  }
}

export class ClientAddressLimit {
  constructor(
    private readonly limit: number,
    private readonly counts: ClientAddressCounts = new LocalAddressCounts(),
  ) {}

  /**
   * Counts a connection from `address` in and arranges its release when the socket closes
   * (the one event every close path ends in, so the count goes down exactly once). False,
   * counting nothing, when the address already has `limit` connections. A header without an
   * address (a unix-socket client) is not limited: it names no client to count.
   */
  admit(address: string | undefined, socket: net.Socket): boolean {
    if (address === undefined) return true;
    const release = this.counts.admit(addressKey(address), this.limit);
    if (release === null) return false;
    socket.once('close', release);
    return true;
  }
}
