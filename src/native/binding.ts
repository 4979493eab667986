// The whole surface of the C++ addon, typed. Nothing else in the package sees the addon
// untyped, and nothing `any` crosses this boundary.

/** What a failed socket/bind/listen reports: numbers only; JS builds the Error. */
export type ListenOutcome = { fd: number } | { errno: number; syscall: string };

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
  /** errno (as a decimal string key) -> how many times accept() was retried after it */
  retriesByErrno: Record<string, number>;
  closed: boolean;
}

/** Event kinds reported by the accept loop (kept in step with acceptor.cc). */
export const AcceptEventKind = { Retry: 0, Pause: 1, Fatal: 2 } as const;
export type AcceptEventKind = (typeof AcceptEventKind)[keyof typeof AcceptEventKind];

export interface AcceptorOptions {
  /** accept() calls per readiness wake-up at most (default 128) */
  batchLimit?: number;
  /** first back-off after EMFILE/ENFILE/ENOBUFS/ENOMEM, doubling up to pauseMaxMs */
  pauseMinMs?: number;
  pauseMaxMs?: number;
}

/**
 * `onBatch` receives accepted descriptors. Each slot says who owns its descriptor:
 *  - >= 0 (untouched): the addon, which closes it when the callback returns;
 *  - -1 (taken): JS is wrapping it; if the callback is cut short (a terminated worker), the
 *    addon closes it unless a libuv handle already owns it;
 *  - -2 (settled): a socket's handle (or JS itself) owns it; the addon never touches it.
 */
export type BatchCallback = (fds: Int32Array) => void;
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

export interface NativeAcceptorConstructor {
  new (listenFd: number, onBatch: BatchCallback, onEvent: AcceptEventCallback, options: AcceptorOptions): NativeAcceptor;
}

export interface NativeBinding {
  Acceptor: NativeAcceptorConstructor;
  openListenSocket(family: 4 | 6, numericAddress: string, port: number, backlog: number): ListenOutcome;
  prepareAdoptedSocket(fd: number): ListenOutcome;
  /** Rejects with a ResolveFailure. */
  resolvePassive(host: string | null, service: string): Promise<ResolvedAddress[]>;
}
