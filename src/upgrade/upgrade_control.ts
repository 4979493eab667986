// The running process's side of an upgrade: a control socket (a Unix socket, mode 0600) on
// which a successor asks for the listening sockets. Control connections are served side by
// side, each under its own deadline, and the first to say "ready" commits: a peer that
// connects and stalls cannot hold a real successor off.
//
// The listening descriptors' owner at every step:
//  1. before and during sendmsg: each listener's backend (this process), as always;
//  2. after sendmsg: still each listener's; the kernel holds its own reference in flight
//     (dropped by the kernel if the successor never reads it) and then the successor holds
//     its own descriptor for the same socket. The socket, and its queue of connections not yet
//     accepted, lives while any process holds a descriptor for it;
//  3. "ready" (the commit point): every listener stops accepting, which closes this process's
//     descriptor (close(), never shutdown(): the queue stays with the successor), and the
//     caller is told to drain ('handedOff');
//  on every failure before "ready" (the successor goes away, sends a bad message, or times
//  out; sendmsg fails) nothing here changes hands: the listeners keep accepting on their
//  own descriptors, the control connection is destroyed (dropping anything still in flight),
//  and 'handOffFailed' reports why.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import type { Listener } from '../listener.js';
import { handleDescriptor } from '../node_internals.js';
import { descriptorPassingBinding } from './binding.js';
import { codedError, ErrorCodes, systemError } from '../errors.js';
import { encodeMessage, handoffTimeout, LineReader, nextMessage, upgradeError } from './protocol.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyListener = Listener<any, any>;

export interface UpgradeControlOptions {
  /** The control socket's path (a Unix socket; at most 107 bytes on Linux). */
  path: string;
  /** How long a successor has to say it is accepting: ms, default 30000. */
  timeoutMs?: number;
}

/** Whether a process answers on the Unix socket at `path` (false: refused or no socket). */
function someoneListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

export class UpgradeControl extends EventEmitter {
  /** Control connections being served, each given the descriptors and awaiting "ready". */
  private readonly pending = new Set<net.Socket>();
  private done = false;

  private constructor(
    private readonly server: net.Server,
    private readonly served: readonly AnyListener[],
    readonly path: string,
    private readonly timeoutMs: number,
  ) {
    super();
    server.on('connection', (socket: net.Socket) => this.onSuccessor(socket));
  }

  /**
   * Listens on `options.path` for a successor. A stale socket file (nobody answers on it) is
   * replaced; a live one is refused with EADDRINUSE. Needs the native addon (descriptors
   * cannot be passed from JS): without it, rejects with ERR_NATIVE_UNAVAILABLE.
   */
  static async listen(listeners: readonly AnyListener[], options: UpgradeControlOptions): Promise<UpgradeControl> {
    const timeoutMs = handoffTimeout(options.timeoutMs);
    if (descriptorPassingBinding() === null) {
      throw codedError(ErrorCodes.NATIVE_UNAVAILABLE, 'handing listening sockets to another process needs the native addon');
    }
    let server: net.Server;
    try {
      server = await UpgradeControl.bindControlSocket(options.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || (await someoneListens(options.path))) throw error;
      fs.rmSync(options.path, { force: true });
      server = await UpgradeControl.bindControlSocket(options.path);
    }
    return new UpgradeControl(server, listeners, options.path, timeoutMs);
  }

  private static bindControlSocket(path: string): Promise<net.Server> {
    // pauseOnConnect: libuv must never read the control connection before the descriptors
    // are sent, and this side reads nothing but "ready" afterwards.
    const server = net.createServer({ pauseOnConnect: true });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      // Only the owner may take the listening sockets: the socket file is 0600 from the start.
      const mask = process.umask(0o177);
      try {
        server.listen(path, () => {
          server.off('error', reject);
          resolve(server);
        });
      } finally {
        process.umask(mask);
      }
    });
  }

  private onSuccessor(socket: net.Socket): void {
    if (this.done) {
      socket.destroy();
      return;
    }
    this.pending.add(socket);
    this.handOff(socket).then(
      () => {
        this.pending.delete(socket);
        // The others got descriptors they may not use: dropped with their connections.
        for (const other of this.pending) other.destroy();
        this.pending.clear();
        this.emit('handedOff');
      },
      (error: Error) => {
        // Nothing changed hands: the listeners still accept on their own descriptors.
        this.pending.delete(socket);
        socket.destroy();
        if (!this.done) this.emit('handOffFailed', error);
      },
    );
  }

  private async handOff(socket: net.Socket): Promise<void> {
    const binding = descriptorPassingBinding();
    const fds = this.served.map((listener) => listener.listeningDescriptor());
    const socketFd = handleDescriptor(socket);
    if (binding === null || socketFd === null) throw upgradeError('the control connection has no descriptor');
    if (fds.length === 0 || fds.some((fd) => fd === null)) throw upgradeError('not listening: nothing to hand over');
    const hello = encodeMessage({ type: 'hello', pid: process.pid, fds: fds.length });
    const sent = binding.sendDescriptors(socketFd, fds as number[], hello);
    if ('errno' in sent) throw upgradeError(`cannot send the listening sockets: ${systemError(sent.errno, sent.syscall).message}`);
    // The descriptors went with the first byte; the rest of the line goes after them, in order.
    if (sent.sent < hello.length) socket.write(hello.subarray(sent.sent));
    const reply = await nextMessage(socket, new LineReader(), this.timeoutMs, 'the successor accepting');
    if (reply.type !== 'ready') throw upgradeError(`expected "ready", got "${reply.type}"`);
    // Another control connection committed first: this one is refused.
    if (this.done) throw upgradeError('another successor took the listening sockets first');
    this.done = true;
    // Committed. Stop accepting first, so every connection from now on is the successor's.
    for (const listener of this.served) listener.stopAccepting();
    // Free the control socket's path (libuv unlinks it on close) before telling the successor,
    // which binds its own there once it reads "released".
    this.server.close();
    // Not awaited: past the commit point nothing may keep this process from draining, not
    // even a successor that dies before reading this (it then finds this process alive or not
    // by its pid, see take_over.ts).
    socket.on('error', () => undefined);
    socket.end(encodeMessage({ type: 'released' }));
  }

  /** Stops listening for successors (the socket file is removed). */
  close(): Promise<void> {
    this.done = true;
    return new Promise((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
  }
}

/**
 * After 'handedOff': waits (within `gracefulTimeout`) for connections still in TLS setup to
 * finish it, then closes gracefully with what is left of it, so that none of the connections
 * this process accepted is cut in the middle of its handshake.
 */
export async function drainListener(listener: AnyListener, gracefulTimeout: number): Promise<void> {
  listener.stopAccepting();
  const deadline = Date.now() + gracefulTimeout;
  while (listener.connectionsInSetup() > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await listener.close({ gracefulTimeout: Math.max(1, deadline - Date.now()) });
}
