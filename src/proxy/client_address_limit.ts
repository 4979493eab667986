// maxConnectionsPerAddress behind a PROXY protocol balancer. The acceptor's own per-address
// count (C++ at accept, or net.Server's callback) sees the socket's peer, which there is the
// balancer: every client would share one count. A listener with proxyProtocol counts the
// client the header names instead, once the header is read.
import type net from 'node:net';
import { addressKey } from '../accept/admission.js';

export class ClientAddressLimit {
  private readonly counts = new Map<string, number>();

  constructor(private readonly limit: number) {}

  /**
   * Counts a connection from `address` in and arranges its release when the socket closes
   * (the one event every close path ends in, so the count goes down exactly once). False,
   * counting nothing, when the address already has `limit` connections. A header without an
   * address (a unix-socket client) is not limited: it names no client to count.
   */
  admit(address: string | undefined, socket: net.Socket): boolean {
    if (address === undefined) return true;
    const key = addressKey(address);
    const count = this.counts.get(key) ?? 0;
    if (count >= this.limit) return false;
    this.counts.set(key, count + 1);
    socket.once('close', () => {
      const left = (this.counts.get(key) ?? 1) - 1;
      if (left > 0) this.counts.set(key, left);
      else this.counts.delete(key);
    });
    return true;
  }

}
