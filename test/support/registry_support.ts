// Helpers for the registry, churn, observability and worker tests: descriptor accounting from
// /proc, bounded waits, cleanup that always runs, and real TLS clients on loopback.
// Every wait here is bounded and names what it was waiting for when it gives up.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { Client } from './sockets.js';
import { waitUntil as waitUntilBounded, within as withinBounded } from './waiting.js';

export { Cleanup, delay } from './waiting.js';

export const WAIT_MS = 10_000;

/** waitUntil with this suite's longer default. */
export function waitUntil(predicate: () => boolean, what: string | (() => string), timeoutMs = WAIT_MS): Promise<void> {
  return waitUntilBounded(predicate, what, timeoutMs);
}

/** within with this suite's longer default. */
export function within<T>(promise: Promise<T>, what: string, timeoutMs = WAIT_MS): Promise<T> {
  return withinBounded(promise, what, timeoutMs);
}

// ---- descriptors, from /proc (Linux) ------------------------------------------------------

/** This process's open descriptors and what each points to. */
export function openDescriptors(): Map<number, string> {
  const table = new Map<number, string>();
  for (const name of fs.readdirSync('/proc/self/fd')) {
    try {
      table.set(Number(name), fs.readlinkSync(`/proc/self/fd/${name}`));
    } catch {
      // closed between readdir and readlink (readdir's own directory descriptor, for one)
    }
  }
  return table;
}

export function fdCount(): number {
  return openDescriptors().size;
}

/** Waits (bounded) until the descriptor count is back to `baseline`; the error lists the extras. */
export async function waitForFdCount(baseline: Map<number, string>, timeoutMs = WAIT_MS): Promise<void> {
  await waitUntil(
    () => fdCount() <= baseline.size,
    () => {
      const now = openDescriptors();
      const extra = [...now].filter(([fd, target]) => baseline.get(fd) !== target).map(([fd, target]) => `${fd}->${target}`);
      return `the descriptor count to return to ${baseline.size} (now ${now.size}; new: ${extra.slice(0, 20).join(', ')})`;
    },
    timeoutMs,
  );
}

interface TcpEntry {
  localPort: number;
  remotePort: number;
  listening: boolean;
}

/** TCP sockets of the whole host by inode, from /proc/net/tcp and tcp6. */
function tcpTable(): Map<string, TcpEntry> {
  const entries = new Map<string, TcpEntry>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [, local, remote, state] = fields;
      const inode = fields[9];
      if (local === undefined || remote === undefined || inode === undefined || inode === '0') continue;
      entries.set(inode, {
        localPort: parseInt(local.slice(local.lastIndexOf(':') + 1), 16),
        remotePort: parseInt(remote.slice(remote.lastIndexOf(':') + 1), 16),
        listening: state === '0A',
      });
    }
  }
  return entries;
}

/**
 * Descriptors this process holds for sockets whose local port is `port`: the listening socket
 * and every accepted connection of a listener on that port (clients have other local ports).
 */
export function descriptorsOnPort(port: number, which: 'all' | 'connections' | 'listening' = 'all'): number[] {
  const table = tcpTable();
  const found: number[] = [];
  for (const [fd, target] of openDescriptors()) {
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    const entry = inode !== undefined ? table.get(inode) : undefined;
    if (entry === undefined || entry.localPort !== port) continue;
    if (which === 'connections' && entry.listening) continue;
    if (which === 'listening' && !entry.listening) continue;
    found.push(fd);
  }
  return found.sort((a, b) => a - b);
}

/** The socket inode a descriptor points to, or undefined. */
export function socketInodeOf(fd: number): string | undefined {
  try {
    return /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`))?.[1];
  } catch {
    return undefined;
  }
}

/** Whether any descriptor of this process points to socket `inode`. */
export function inodeOpen(inode: string): boolean {
  for (const target of openDescriptors().values()) if (target === `socket:[${inode}]`) return true;
  return false;
}

// ---- clients ------------------------------------------------------------------------------

/** A client socket (plain or TLS) with this suite's longer default wait. */
export class Peer<S extends net.Socket = net.Socket> extends Client<S> {
  closedWithin(timeoutMs = WAIT_MS): Promise<void> {
    return this.whenClosed(timeoutMs);
  }
}

/** A plain TCP client, resolved once connected. */
export function tcpPeer(port: number, host = '127.0.0.1'): Promise<Peer> {
  return within(
    new Promise<Peer>((resolve, reject) => {
      const socket = net.connect({ port, host });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new Peer(socket));
      });
    }),
    `a TCP connection to ${host}:${port}`,
  );
}

/** A TLS client, resolved once its handshake is done (rejected with the handshake's error). */
export function tlsPeer(port: number, options: tls.ConnectionOptions = {}, host = '127.0.0.1'): Promise<Peer<tls.TLSSocket>> {
  return within(
    new Promise<Peer<tls.TLSSocket>>((resolve, reject) => {
      const socket = tls.connect({ port, host, ...options });
      const onError = (error: Error): void => {
        socket.destroy();
        reject(error);
      };
      socket.once('error', onError);
      socket.once('secureConnect', () => {
        socket.off('error', onError);
        resolve(new Peer(socket));
      });
    }),
    `a TLS connection to ${host}:${port}`,
  );
}

/** Runs `task(i)` for i in [0, count) with at most `width` running at a time. */
export async function inWindow(count: number, width: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      await task(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, lane));
}
