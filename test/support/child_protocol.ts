// What the test and a listener running in a child process (test/fixtures/listener_child.ts)
// say to each other: one JSON object per line, commands on the child's stdin and events on
// its stdout.
import type { BackendKind, ListenerStats } from '../../src/index.js';

export interface ChildConfig {
  backend: BackendKind;
  port?: number | string;
  host?: string;
  /** Adopt this (inherited) listening descriptor instead of binding. */
  fd?: number;
  /**
   * 'hold': every connection gets `hello <id>\n` and stays open until the peer closes it or
   * a `release` command; 'serve': `hello <id>\n`, then the handler settles and the
   * listener ends the connection.
   */
  mode: 'hold' | 'serve';
  acceptorOptions?: { batchLimit?: number; pauseMinMs?: number; pauseMaxMs?: number };
  /**
   * Serve with this many worker threads (test/fixtures/child_worker_handler.ts; native
   * backend): the accept thread accepts, and greetings number connections across workers.
   */
  workers?: number;
  /** Call close() right after listen(), while it is still opening; report 'closedWhileOpening'. */
  closeWhileOpening?: boolean;
}

export type ChildCommand =
  | { cmd: 'stats' }
  | { cmd: 'release' }
  | { cmd: 'close' }
  | { cmd: 'fdinfo'; fd: number }
  /** Connect to host:port from inside the child (its network namespace) and report the first line. */
  | { cmd: 'connectTo'; host: string; port: number }
  | { cmd: 'exit' };

export interface ErrorReport {
  code: string | undefined;
  errno: number | undefined;
  syscall: string | undefined;
  message: string;
}

/** What a child reports of an error: its code, errno and syscall when it has them. */
export function errorReport(error: unknown): ErrorReport {
  const coded = error as Partial<NodeJS.ErrnoException> & { message?: string };
  return {
    code: typeof coded.code === 'string' ? coded.code : undefined,
    errno: typeof coded.errno === 'number' ? coded.errno : undefined,
    syscall: typeof coded.syscall === 'string' ? coded.syscall : undefined,
    message: typeof coded.message === 'string' ? coded.message : String(error),
  };
}

export interface DescriptorInfo {
  fd: number;
  open: boolean;
  /** The flags line of /proc/self/fdinfo/<fd> (O_CLOEXEC is 0o2000000), null when closed. */
  flags: number | null;
  link: string | null;
}

export type ChildEvent =
  /** Sent first, before the listener exists: what the descriptor to adopt looks like then. */
  | { event: 'startup'; pid: number; adopted: DescriptorInfo | null }
  | { event: 'listening'; pid: number; address: string; family: string; port: number }
  | { event: 'listenFailed'; error: ErrorReport }
  /** How listen() settled, and the descriptors open before listen() was called. */
  | { event: 'closedWhileOpening'; listen: string; descriptorsBefore: number | null }
  | { event: 'connection'; id: number; remoteAddress: string | null }
  | { event: 'acceptRetry'; error: ErrorReport }
  | { event: 'acceptPaused'; error: ErrorReport; delayMs: number }
  | { event: 'error'; error: ErrorReport; stats: ListenerStats }
  | { event: 'connectionError'; error: ErrorReport }
  | { event: 'close'; stats: ListenerStats }
  | { event: 'stats'; stats: ListenerStats; descriptors: number | null }
  | { event: 'released'; count: number }
  /** The answer to connectTo: the first line received, or how the connection failed. */
  | { event: 'clientResult'; host: string; line: string | null; error: ErrorReport | null }
  | ({ event: 'fdinfo' } & DescriptorInfo);
