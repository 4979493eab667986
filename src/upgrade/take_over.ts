// The successor's side of an upgrade: receives the running process's listening sockets, lets
// the caller start accepting on them, then confirms, and the predecessor drains.
//
// The received descriptors' owner at every step:
//  1. in flight: the kernel (the control connection's queue);
//  2. receiveDescriptors' worker thread, which closes them all on any failure (including a
//     descriptor that is not a listening TCP socket);
//  3. from `takeOver()` resolving: the caller, who gives each to a listener (`fd` option),
//     which owns it once listen() resolves. `closeUnadopted()` closes the ones no listener
//     took (still the same socket, checked by inode, so a number reused since is left alone);
//  4. confirm(): sends "ready". "released" back means the predecessor has stopped accepting:
//     the successor alone serves. A control connection that ends without "released" while
//     the predecessor still runs means it gave up (time-out): confirm() rejects and the
//     caller should close its listeners. If the predecessor has died instead, nobody else
//     serves and confirm() resolves.
import fs from 'node:fs';
import net from 'node:net';
import { descriptorPassingBinding } from './binding.js';
import { codedError, ErrorCodes, systemError } from '../errors.js';
import { decodeMessage, encodeMessage, handoffTimeout, LineReader, nextMessage, upgradeError } from './protocol.js';

export interface TakeOverOptions {
  /** The running process's control socket. */
  path: string;
  /** For each step (connect and receive; "released"): ms, 1 to 60000, default 30000. */
  timeoutMs?: number;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class TakeOver {
  private readonly inodes: Map<number, number>;

  constructor(
    /** The listening sockets, in the predecessor's order; the caller's now. */
    readonly fds: readonly number[],
    /** The predecessor's process id. */
    readonly predecessorPid: number,
    private readonly control: net.Socket,
    private readonly reader: LineReader,
    private readonly timeoutMs: number,
  ) {
    this.inodes = new Map(fds.map((fd) => [fd, fs.fstatSync(fd).ino]));
  }

  /** Tells the predecessor this process accepts; resolves once it has stopped accepting. */
  async confirm(): Promise<void> {
    this.control.write(encodeMessage({ type: 'ready' }));
    try {
      const reply = await nextMessage(this.control, this.reader, this.timeoutMs, '"released"');
      if (reply.type !== 'released') throw upgradeError(`expected "released", got "${reply.type}"`);
    } catch (error) {
      if (processAlive(this.predecessorPid)) throw error;
      // The predecessor is gone: whatever it decided, this process is the one serving.
    } finally {
      this.control.destroy();
    }
  }

  /** Gives up before confirm(): the predecessor keeps serving. */
  abandon(): void {
    this.control.destroy();
  }

  /** Closes a received descriptor that no listener took (never one whose number was reused). */
  closeUnadopted(fd: number): void {
    const inode = this.inodes.get(fd);
    try {
      if (inode !== undefined && fs.fstatSync(fd).ino === inode) fs.closeSync(fd);
    } catch {
      // already closed (a listener's failed open closed it): nothing to release
    }
    this.inodes.delete(fd);
  }
}

/** Connects to a running process's control socket and receives its listening sockets. */
export async function takeOver(options: TakeOverOptions): Promise<TakeOver> {
  const binding = descriptorPassingBinding();
  if (binding === null) {
    throw codedError(ErrorCodes.NATIVE_UNAVAILABLE, 'receiving listening sockets from another process needs the native addon');
  }
  const timeoutMs = handoffTimeout(options.timeoutMs);
  let received;
  try {
    received = await binding.receiveDescriptors(options.path, timeoutMs);
  } catch (failure) {
    const { errno, syscall } = failure as { errno: number; syscall: string };
    throw upgradeError(`no listening sockets from ${options.path}: ${systemError(errno, syscall).message}`, { errno, syscall });
  }
  // Everything received is ours now; any failure below must close it.
  const control = new net.Socket({ fd: received.socketFd, readable: true, writable: true });
  control.pause();
  const closeAll = (): void => {
    control.destroy();
    for (const fd of received.fds) fs.closeSync(fd);
  };
  try {
    const reader = new LineReader();
    const [line] = reader.push(received.payload);
    const hello = line !== undefined ? decodeMessage(line) : await nextMessage(control, reader, timeoutMs, 'the hello');
    if (hello.type !== 'hello' || hello.fds !== received.fds.length) {
      throw upgradeError(`bad hello: ${JSON.stringify(hello)} with ${received.fds.length} descriptors`);
    }
    return new TakeOver(received.fds, hello.pid, control, reader, timeoutMs);
  } catch (error) {
    closeAll();
    throw error;
  }
}
