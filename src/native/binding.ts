// The whole surface of the C++ addon, typed. Nothing else in the package sees the addon
// untyped, and nothing `any` crosses this boundary.

/**
 * What a failed socket/bind/listen (or the checks on an adopted descriptor) reports: numbers
 * only; JS builds the Error. `family` comes with EAFNOSUPPORT from `getsockname`: the address
 * family of an adopted socket that is not TCP (1 is AF_UNIX).
 */
export type ListenOutcome = { fd: number } | { errno: number; syscall: string; family?: number };

export interface ResolvedAddress {
  family: 4 | 6;
  address: string;
  port: number;
}

export interface ResolveFailure {
  gaiError: number;
  message: string;
}

export interface NativeAcceptorStats {
  accepted: number;
  batches: number;
  pauses: number;
  /** accept() calls that found the queue empty (EAGAIN); Linux reads the queue's length instead */
  emptyAccepts: number;
  /** errno (as a decimal string key) -> how many times accept() was retried after it */
  retriesByErrno: Record<string, number>;
  closed: boolean;
}

/** Event kinds reported by the accept loop (kept in step with acceptor.cc). */
export const AcceptEventKind = { Retry: 0, Pause: 1, Fatal: 2 } as const;
export type AcceptEventKind = (typeof AcceptEventKind)[keyof typeof AcceptEventKind];

/**
 * Tuning of the accept loop. Each is an integer in its range or absent (the default); anything
 * else is refused with ERR_INVALID_OPTION, by the listener's constructor and again by the addon
 * (src/accept/acceptor_options.ts and native/acceptor.cc keep the same ranges).
 */
export interface AcceptorOptions {
  /** accept() calls per readiness wake-up at most: 1..4096, default 128 */
  batchLimit?: number;
  /** ms of the first back-off after EMFILE/ENFILE/ENOBUFS/ENOMEM, doubling up to pauseMaxMs: 1..60000, default 5 */
  pauseMinMs?: number;
  /** ms the back-off grows to at most: pauseMinMs (5 when absent)..3600000, default 1000 (pauseMinMs if larger) */
  pauseMaxMs?: number;
}

/**
 * `onBatch` receives accepted descriptors in the first `count` slots of `fds`, the same
 * Int32Array every time (batchLimit slots; the rest are stale). Each slot says who owns its descriptor when the
 * callback returns (native/acceptor.h has the same list):
 *  - the descriptor itself (untouched): the addon, which closes it;
 *  - -1 (taken): JS is wrapping it; if the callback is cut short (a terminated worker), the
 *    addon closes it unless a libuv handle already owns it;
 *  - -2 (settled): a socket's handle owns it, or JS gave it away; the addon never touches it;
 *  - -3 (returned): JS could not wrap it and hands it back; the addon closes it unless a
 *    libuv handle on this thread's loop owns it (the wrapping got that far before it threw).
 * Any other value is treated as untouched. The addon always closes the descriptor it accepted
 * for the slot, never a number JS wrote there.
 */
export type BatchCallback = (fds: Int32Array, count: number) => void;
export type AcceptEventCallback = (kind: AcceptEventKind, errno: number, delayMs: number) => void;

export interface NativeAcceptor {
  start(): void;
  /** Closes the listening descriptor at once; idempotent. */
  close(): void;
  stats(): NativeAcceptorStats;
  address(): { address: string; family: 'IPv4' | 'IPv6'; port: number } | null;
  ref(): void;
  unref(): void;
}

/**
 * What the addon throws when a libuv call fails (`new Acceptor()`, `start()`): an Error with
 * the errno name as `code` ('EEXIST'), a positive `errno` and the libuv call as `syscall`.
 */
export interface NativeCallFailure extends Error {
  code: string;
  errno: number;
  syscall: string;
}

export interface NativeAcceptorConstructor {
  /**
   * Takes the listening descriptor only when it returns. It throws, leaving the descriptor
   * untouched and the caller's, for a bad argument (ERR_INVALID_OPTION: `listenFd` 0..2^31-1,
   * the options above) or a NativeCallFailure, e.g. `uv_poll_init` EEXIST when this thread's
   * loop already watches the descriptor. `start()` throws a NativeCallFailure if polling cannot
   * start; the acceptor is then closed and the descriptor handed back to the caller.
   */
  new (listenFd: number, onBatch: BatchCallback, onEvent: AcceptEventCallback, options: AcceptorOptions): NativeAcceptor;
}

/** Numbers out of range throw ERR_INVALID_OPTION (a RangeError; a TypeError for a non-number). */
export interface NativeBinding {
  Acceptor: NativeAcceptorConstructor;
  /** port 0..65535, backlog 0..2^31-1 (the kernel caps it at net.core.somaxconn) */
  openListenSocket(family: 4 | 6, numericAddress: string, port: number, backlog: number): ListenOutcome;
  /** fd 0..2^31-1: a listening TCP socket (AF_INET/AF_INET6), made non-blocking and close-on-exec */
  prepareAdoptedSocket(fd: number): ListenOutcome;
  /** Rejects with a ResolveFailure. */
  resolvePassive(host: string | null, service: string): Promise<ResolvedAddress[]>;
}
