// The hand-off conversation between a running process (the sender of its listening sockets)
// and its successor, over one Unix stream connection: a line of JSON each way, bounded.
//
//   sender -> successor  {"type":"hello","pid":P,"fds":N}   carried by the same sendmsg as
//                                                           the N descriptors (SCM_RIGHTS)
//   successor -> sender  {"type":"ready"}                   accepting on every descriptor
//   sender -> successor  {"type":"released"}                the sender has stopped accepting
//                                                           and freed the control socket
//
// "ready" received by the sender is the commit point: before it, any failure leaves the
// sender serving and the successor gives up; after it, the sender drains and exits.
import type net from 'node:net';
import { codedError, ErrorCodes } from '../errors.js';
import { checkInteger } from '../validation.js';
import type { CodedError } from '../errors.js';

/** A line longer than this is a broken peer, not a message. */
export const MAX_MESSAGE_BYTES = 1024;
/** How long either side waits for the other's next message by default. */
export const DEFAULT_HANDOFF_TIMEOUT_MS = 30_000;
/**
 * The longest wait allowed (native/descriptor_passing.cc checks the same): receiving blocks a
 * threadpool thread for up to that long, and Node has only four of them by default.
 */
export const MAX_HANDOFF_TIMEOUT_MS = 60_000;

/** `timeoutMs` of either side: an integer from 1 to MAX_HANDOFF_TIMEOUT_MS, else ERR_INVALID_OPTION. */
export function handoffTimeout(timeoutMs: unknown): number {
  checkInteger('timeoutMs', timeoutMs, 1, MAX_HANDOFF_TIMEOUT_MS);
  return (timeoutMs as number | undefined) ?? DEFAULT_HANDOFF_TIMEOUT_MS;
}

export type HandOffMessage = { type: 'hello'; pid: number; fds: number } | { type: 'ready' } | { type: 'released' };

export function encodeMessage(message: HandOffMessage): Buffer {
  return Buffer.from(`${JSON.stringify(message)}\n`);
}

export function upgradeError(message: string, extra: Record<string, unknown> = {}): CodedError {
  return codedError(ErrorCodes.UPGRADE_FAILED, message, extra);
}

/** Parses one line; throws ERR_UPGRADE_FAILED for anything that is not a known message. */
export function decodeMessage(line: string): HandOffMessage {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw upgradeError(`bad hand-off message: ${JSON.stringify(line.slice(0, 80))}`);
  }
  const message = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  if (message.type === 'ready' || message.type === 'released') return { type: message.type };
  if (message.type === 'hello' && Number.isInteger(message.pid) && Number.isInteger(message.fds)) {
    return { type: 'hello', pid: message.pid as number, fds: message.fds as number };
  }
  throw upgradeError(`bad hand-off message: ${JSON.stringify(line.slice(0, 80))}`);
}

/**
 * Collects newline-terminated lines from a stream of chunks, refusing a line longer than
 * MAX_MESSAGE_BYTES (the peer gets no way to make us buffer without limit).
 */
export class LineReader {
  private pending: Buffer = Buffer.alloc(0);

  /** The complete lines in what has arrived so far; throws for an over-long line. */
  push(chunk: Buffer): string[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const lines: string[] = [];
    let newline: number;
    while ((newline = this.pending.indexOf(0x0a)) !== -1) {
      lines.push(this.pending.subarray(0, newline).toString('utf8'));
      this.pending = this.pending.subarray(newline + 1);
    }
    if (this.pending.length > MAX_MESSAGE_BYTES) throw upgradeError(`hand-off message longer than ${MAX_MESSAGE_BYTES} bytes`);
    return lines;
  }
}

/** Resolves with the next message on `socket`, or rejects (bad message, end, error, time-out). */
export function nextMessage(socket: net.Socket, reader: LineReader, timeoutMs: number, what: string): Promise<HandOffMessage> {
  return new Promise((resolve, reject) => {
    const finish = (error: Error | null, message?: HandOffMessage): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      socket.pause();
      if (error) reject(error);
      else resolve(message as HandOffMessage);
    };
    const onData = (chunk: Buffer): void => {
      try {
        const [line] = reader.push(chunk);
        if (line !== undefined) finish(null, decodeMessage(line));
      } catch (error) {
        finish(error as Error);
      }
    };
    const onEnd = (): void => finish(upgradeError(`the other process closed the control connection before ${what}`));
    const onError = (error: Error): void => finish(upgradeError(`control connection failed before ${what}: ${error.message}`, { cause: error }));
    const timer = setTimeout(() => finish(upgradeError(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    socket.resume();
  });
}
