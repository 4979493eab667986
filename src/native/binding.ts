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
  admission: {
    /** why accepting is paused now (AdmissionReasonCode), 0 when it is not */
    reason: AdmissionReasonCode;
    /** ms accepting was paused at an admission limit, the current pause included */
    pausedMs: number;
    /** times it paused at a limit */
    pauses: number;
    /** connections waiting in the listening socket's accept queue (Linux TCP_INFO), else null */
    backlog: number | null;
    /** connections closed at accept over maxConnectionsPerAddress */
    rejectedPerAddress: number;
    /** connections closed at accept from a new address while the per-address table was full */
    rejectedAddressTableFull: number;
    /** connections reset from the accept queue beyond maxQueuedConnections while paused */
    rejectedQueued: number;
    /** ms of this thread's CPU spent resetting them (accept, setsockopt, close) */
    sheddingCpuMs: number;
  };
}

/** Why the accept loop paused (native/admission.h AdmissionReason). */
export const AdmissionReasonCode = { None: 0, MaxConnections: 1, MaxPendingHandshakes: 2 } as const;
export type AdmissionReasonCode = (typeof AdmissionReasonCode)[keyof typeof AdmissionReasonCode];

/**
 * Admission control handed to the addon (src/accept/admission.ts builds it): limits (0 or
 * absent: none; else 1..2^31-1) read before every accept(), against `admissionCounters`, an
 * Int32Array JS and the addon share (layout in native/admission.h and admission.ts).
 */
export interface NativeAdmissionOptions {
  admissionCounters?: Int32Array;
  maxConnections?: number;
  maxPendingHandshakes?: number;
  maxConnectionsPerAddress?: number;
  /** the bits of an IPv6 peer its per-address key keeps: 1..128, default 64 */
  perAddressIPv6Prefix?: number;
  /**
   * while paused at maxConnections/maxPendingHandshakes, connections allowed to wait in the
   * accept queue (0..2^31-1; absent: no bound); the oldest beyond it are accepted and reset.
   * Needs one of those two limits.
   */
  maxQueuedConnections?: number;
  /** count connections in setup as handshaking (for maxPendingHandshakes) */
  countsHandshakes?: boolean;
  /** hand each batch's peer addresses to onBatch (saves JS a getpeername() per connection) */
  peerAddresses?: boolean;
}

/** Event kinds reported by the accept loop (kept in step with acceptor.cc). */
export const AcceptEventKind = { Retry: 0, Pause: 1, Fatal: 2, Backpressure: 3 } as const;
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
  /**
   * addresses the maxConnectionsPerAddress table holds: 1..65536, default maxConnections up to
   * 65536 (the documented cap). Smaller only to see a full table without 65,537 connections.
   */
  addressTableSize?: number;
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
 * for the slot, never a number JS wrote there. `addressSlots[i]` is descriptor i's slot in the
 * per-address table (-1: none); whoever releases the connection gives it back through
 * `releaseAddress()` (admission.ts).
 * When the acceptor was created with `peerAddresses: true`, `peerWords` holds each descriptor's
 * peer, read by accept() itself, as numbers (native/peer_words.h; src/accept/peer_address.ts
 * reads them), and `ipv6Texts[i]` the text of descriptor i's peer when it is IPv6 and not
 * IPv4-mapped (`ipv6Texts` is undefined when no peer of the batch is); else both are undefined.
 */
/**
 * A batch: `fds[0..count)` in one array the acceptor reuses for every batch, each descriptor's
 * per-address slot (only when maxConnectionsPerAddress is set) and the peers (only when asked).
 */
export type BatchCallback = (
  fds: Int32Array,
  count: number,
  addressSlots: Int32Array | undefined,
  peerWords: Int32Array | undefined,
  ipv6Texts: Array<string | undefined> | undefined,
) => void;

/** A peer as accept() gave it, shaped like Node's socket._peername. */
export interface PeerAddress {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}
/** For Backpressure, `errno` is the AdmissionReasonCode accepting stopped at. */
export type AcceptEventCallback = (kind: AcceptEventKind, errno: number, delayMs: number) => void;

export interface NativeAcceptor {
  start(): void;
  /** Closes the listening descriptor at once; idempotent. */
  close(): void;
  stats(): NativeAcceptorStats;
  address(): { address: string; family: 'IPv4' | 'IPv6'; port: number } | null;
  ref(): void;
  unref(): void;
  /**
   * A connection was released while the shared counters said accepting is paused: ends a
   * pause for lack of descriptors at once, and an admission pause if no limit is reached any
   * more. True when an admission pause ended.
   */
  resume(): boolean;
  /** A released connection's per-address slot (from a batch's addressSlots): false if it counts nothing. */
  releaseAddress(slot: number): boolean;
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

/**
 * The ClientHello outcome (native/hello_peek.h): a `verdict` other than 1 means the descriptor goes to
 * OpenSSL as it is (malformed, not TLS, too large, or the client closed); `servername` is the
 * host_name's latin1 text; `errno` the socket's error the peek met (reading it cleared it for the
 * socket's reader), else 0; `taken` the stream's first bytes when they were read off the socket
 * (a hello the kernel's queue would not hold whole), to be read before the descriptor's own;
 * `choices[i]`, for the i-th ALPN list given, the index of the first protocol of the client's
 * list that it holds, or -1.
 */
export type HelloCallback = (
  token: number,
  verdict: HelloVerdict,
  servername: string | undefined,
  errno: number,
  taken: Buffer | undefined,
  ...choices: number[]
) => void;

/** 1: parsed; 0: not parsed; -1: not parsed, and not one byte came (the client closed first, or reset). */
export type HelloVerdict = 1 | 0 | -1;

/**
 * The PROXY header outcome (native/hello_peek.h): `header`, the header's bytes, read off the
 * socket with the ClientHello left queued; undefined when its end was not found (the client's
 * FIN, or a queue that stopped growing), nothing read; `errno` the socket's error, else 0.
 * `helloParsed` is 1 when the whole ClientHello was queued behind the header and parsed from
 * the same peek: `servername` and `choices` are then as HelloCallback's, and the hello needs
 * no wait of its own. Otherwise it and what follows are undefined.
 */
export type HeaderCallback = (
  token: number,
  header: Buffer | undefined,
  errno: number,
  helloParsed?: 1,
  servername?: string,
  ...choices: number[]
) => void;

/** A hello parsed the moment it was watched: its host_name (latin1) and the choice from each ALPN list. */
export type ParsedHello = [servername: string | undefined, ...choices: number[]];

/** Waits, in C++, for each connection's whole ClientHello; see native/hello_peek.h. */
export interface NativeHelloPeeker {
  /**
   * Takes `fd` (0..2^31-1) until onHello gives it back for `token` (0..2^31-1), maybe before
   * this returns. Throws, leaving `fd` untouched and the caller's, if it cannot be polled.
   */
  watch(fd: number, token: number): void;
  /**
   * The same for a PROXY header: `versions` bit 0 version 1, bit 1 version 2; onHeader gives
   * the descriptor back.
   */
  watch(fd: number, token: number, versions: number): void;
  /**
   * watch(fd, token), except when the whole ClientHello is queued already and parses (no
   * error, nothing read off): then `fd` stays the caller's, no callback runs, and this returns
   * `[servername, ...choices]` as onHello would have them. Undefined otherwise, as watch().
   */
  watchUnlessParsed(fd: number, token: number): ParsedHello | undefined;
  /** Stops a wait and closes its descriptor; false when `token` is not waiting. */
  cancel(token: number): boolean;
  /** Cancels every wait; watch() throws from then on. */
  close(): void;
}

export interface NativeHelloPeekerConstructor {
  /** `alpnLists`: up to 4 lists of server protocols in the ALPN wire format. */
  new (alpnLists: Buffer[], onHello: HelloCallback, onHeader: HeaderCallback): NativeHelloPeeker;
}

export interface NativeAcceptorConstructor {
  /**
   * Takes the listening descriptor only when it returns. It throws, leaving the descriptor
   * untouched and the caller's, for a bad argument (ERR_INVALID_OPTION: `listenFd` 0..2^31-1,
   * the options above) or a NativeCallFailure, e.g. `uv_poll_init` EEXIST when this thread's
   * loop already watches the descriptor. `start()` throws a NativeCallFailure if polling cannot
   * start; the acceptor is then closed and the descriptor handed back to the caller.
   */
  new (
    listenFd: number,
    onBatch: BatchCallback,
    onEvent: AcceptEventCallback,
    options: AcceptorOptions & NativeAdmissionOptions,
  ): NativeAcceptor;
}

/** A failed system call of the descriptor passing (native/descriptor_passing.h): numbers only. */
export interface DescriptorPassingFailure {
  errno: number;
  syscall: string;
}

/** What `receiveDescriptors` resolves with; every descriptor in it is the caller's, close-on-exec. */
export interface ReceivedDescriptors {
  /** The connected Unix socket the descriptors came over (non-blocking). */
  socketFd: number;
  /** 1 to 16 listening TCP sockets (checked: SOCK_STREAM, AF_INET/AF_INET6, listening). */
  fds: number[];
  /** The bytes that came with them (1 to 1024): the start of the sender's data. */
  payload: Buffer;
}

/** Numbers out of range throw ERR_INVALID_OPTION (a RangeError; a TypeError for a non-number). */
export interface NativeBinding {
  /** Absent from an addon built before it: the ClientHello is then read in JS. */
  HelloPeeker?: NativeHelloPeekerConstructor;
  Acceptor: NativeAcceptorConstructor;
  /** port 0..65535, backlog 0..2^31-1 (the kernel caps it at net.core.somaxconn) */
  openListenSocket(family: 4 | 6, numericAddress: string, port: number, backlog: number): ListenOutcome;
  /** fd 0..2^31-1: a listening TCP socket (AF_INET/AF_INET6), made non-blocking and close-on-exec */
  prepareAdoptedSocket(fd: number): ListenOutcome;
  /**
   * close(fd): 0, or the errno. For a descriptor the addon handed to JS that no socket took (in
   * a worker thread fs.closeSync warns of one the worker did not open). Absent from an addon
   * built before it: fs.closeSync then.
   */
  closeDescriptor?(fd: number): number;
  /** TCP_DEFER_ACCEPT on a listening socket: 0, or the errno (ENOPROTOOPT where there is none). */
  setDeferAccept(fd: number, seconds: number): number;
  /** The key maxConnectionsPerAddress counts `address` under (native/address_key.h), null if not limited; ipv6Prefix 1..128. */
  addressKey(address: string, ipv6Prefix: number): string | null;
  /** Rejects with a ResolveFailure. */
  resolvePassive(host: string | null, service: string): Promise<ResolvedAddress[]>;
  /**
   * One datagram with `state` to the AF_UNIX socket `address` ('/path', or '@name' in the
   * abstract namespace): `{}` when sent, else the failed call. A malformed or too long
   * address throws ERR_INVALID_OPTION.
   */
  notifySocket(address: string, state: string): NotifyOutcome;
  /**
   * One sendmsg of `payload` (1..1024 bytes) with `fds` (1..16) as SCM_RIGHTS on a connected
   * Unix stream socket, never blocking (EAGAIN is a failure: nothing went). The descriptors
   * stay the caller's; the kernel holds its own reference while they are in flight. Once any
   * byte went, so did the descriptors: `sent` may then be less than the payload, and the
   * caller sends the rest (after the descriptors, in order).
   */
  sendDescriptors(socketFd: number, fds: readonly number[], payload: Buffer): { sent: number } | DescriptorPassingFailure;
  /**
   * Connects to the Unix socket at `path` and receives one message with descriptors, on a
   * worker thread, within `timeoutMs` (1..60000: it holds a threadpool thread that long). Rejects with a DescriptorPassingFailure,
   * having closed everything it received (ETIMEDOUT, ECONNRESET: the sender closed first,
   * EMSGSIZE: truncated control data, EBADMSG: no descriptors or foreign control data; from
   * getsockopt, a descriptor that is not a listening TCP socket).
   */
  receiveDescriptors(path: string, timeoutMs: number): Promise<ReceivedDescriptors>;
}

export type NotifyOutcome = Record<string, never> | { errno: number; syscall: string };
