// The listener that both the plain-TCP and the TLS listeners are: it owns an accept backend,
// turns what it accepts into tracked sockets, runs each connection's setup stage (nothing
// for TCP, the TLS handshake for TLS), hands the result to the handler, and closes.
//
// Descriptor ownership on this side:
//  - native backend: a descriptor becomes ours when onDescriptors marks its slot taken (-1);
//    adoptDescriptor() then wraps it in a net.Socket, whose libuv handle owns it from then on
//    (and closes it when the socket closes), and the slot is marked settled (-2). If wrapping
//    throws, we close it ourselves.
//  - js backend: net.Server hands us a net.Socket that already owns its descriptor.
//  - either way the connection is registered at once and released on the socket's 'close',
//    which Node emits after the handle (and so the descriptor) is closed.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import type { AcceptBackend, AcceptSink, BackendKind, ListenTarget } from './accept/backend.js';
import { NativeAcceptBackend } from './accept/native_backend.js';
import { JsAcceptBackend } from './accept/js_backend.js';
import type { AcceptorOptions } from './native/binding.js';
import { chooseBackend } from './backend_choice.js';
import { resolveListenAddress } from './address.js';
import { ConnectionRegistry } from './registry.js';
import type { ConnectionRecord } from './registry.js';
import { codedError, errnoName, ErrorCodes } from './errors.js';
import type { CodedError, SystemError } from './errors.js';
import { channels, debug } from './diagnostics.js';
import { formatPrometheus } from './metrics.js';
import { auditDescriptors } from './audit.js';
import { rejectUnknownOptions } from './option_keys.js';
import type { AuditReport } from './audit.js';

export interface BaseListenerOptions {
  /** Port number or service name ('https'); 0 picks a free port. */
  port?: number | string;
  /** Address or name to bind; omitted = wildcard (`::` dual-stack where IPv6 exists). */
  host?: string;
  /** An already listening socket to adopt instead of binding; the listener closes it on close(). */
  fd?: number;
  backlog?: number;
  backend?: BackendKind;
  /** ms the peer gets to close after a handler finishes before the socket is destroyed. */
  gracefulCloseTimeout?: number;
  /** ms without traffic after which a connection is closed (off by default). */
  idleTimeout?: number;
}

export interface ListenerStats {
  accepted: number;
  closed: number;
  active: number;
  /** accepted - closed - active: connections lost without being closed. Should stay 0. */
  leaked: number;
  /** TLS setups: completed; failed or timed out by the client; aborted by close(). */
  handshakes: { completed: number; failed: number; timedOut: number; aborted: number };
  /** accept() retries by errno name ('ECONNABORTED': 3) */
  acceptRetries: Record<string, number>;
  acceptPauses: number;
  sni: { sniCredential: number; primaryCredential: number };
  handlerErrors: number;
  idleTimeouts: number;
}

export interface CloseOptions {
  /** End active connections and give them this long (ms) before destroying them. */
  gracefulTimeout?: number;
}

/** Where a connection failed before its handler got it; what `tlsClientError` carries. */
export interface SetupFailureInfo {
  id: number;
  remoteAddress?: string;
  remotePort?: number;
}

/**
 * What happens between a tracked net.Socket and the handler. `done` and `fail` may be called
 * synchronously or later, once each at most between them.
 */
export interface ConnectionSetup<S extends net.Socket, I extends { id: number }> {
  start(
    socket: net.Socket,
    record: ConnectionRecord,
    done: (served: S, info: I, handshake?: HandshakeOutcome) => void,
    fail: (error: CodedError, kind: 'failed' | 'timedOut') => void,
  ): void;
}

/** What a setup stage with a handshake reports on success, for the statistics. */
export interface HandshakeOutcome {
  sniCredentialUsed: boolean;
}

export type Handler<S extends net.Socket, I> = (socket: S, info: I) => void | Promise<void>;

/**
 * Wraps an accepted descriptor in a socket that owns it. It may instead return null, meaning
 * "taken, not wrapped": the adopter keeps the descriptor for itself, and the listener neither
 * tracks nor closes it, so it counts as `leaked` (and shows in audit().untracked on Linux).
 * That is the seam a test uses to lose a descriptor between accept and registration.
 */
export type DescriptorAdopter = (fd: number) => net.Socket | null;

export const adoptDescriptor: (fd: number) => net.Socket = (fd) => new net.Socket({ fd, readable: true, writable: true });

/** Parts of the listener a test (or an embedder) can replace. */
export interface ListenerDependencies {
  adoptDescriptor?: DescriptorAdopter;
  acceptorOptions?: AcceptorOptions;
}

const DEFAULT_BACKLOG = 1024;
/** Batch slot states written for the acceptor (see native/acceptor.h). */
const SLOT_TAKEN = -1;
const SLOT_SETTLED = -2;
const DEFAULT_GRACEFUL_CLOSE_MS = 5000;

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function descriptorOf(socket: net.Socket): number | null {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : null;
}

function errorOf(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

export class Listener<S extends net.Socket, I extends { id: number }> extends EventEmitter implements AcceptSink {
  readonly backend: BackendKind;
  protected readonly registry = new ConnectionRegistry();
  private readonly acceptBackend: AcceptBackend;
  private readonly adopt: DescriptorAdopter;
  private readonly options: BaseListenerOptions;
  private readonly gracefulCloseTimeout: number;
  private state: 'new' | 'opening' | 'listening' | 'closing' | 'closed' = 'new';
  private closePromise: Promise<void> | null = null;
  private listenPromise: Promise<net.AddressInfo> | null = null;
  /** The addon, when it loads: its resolver serves both backends. */
  private readonly resolverBinding: ReturnType<typeof chooseBackend>['binding'];
  /** The port last bound, for audit() after the listening socket is gone. */
  private lastPort: number | null = null;

  constructor(
    options: BaseListenerOptions,
    private readonly setup: ConnectionSetup<S, I>,
    private readonly handler: Handler<S, I>,
    dependencies: ListenerDependencies = {},
  ) {
    super();
    if (typeof handler !== 'function') throw codedError(ErrorCodes.INVALID_OPTION, 'handler must be a function');
    validateBaseOptions(options);
    this.options = options;
    this.gracefulCloseTimeout = options.gracefulCloseTimeout ?? DEFAULT_GRACEFUL_CLOSE_MS;
    this.adopt = dependencies.adoptDescriptor ?? adoptDescriptor;
    const { kind, binding } = chooseBackend(options.backend);
    this.backend = kind;
    this.acceptBackend =
      kind === 'native' && binding
        ? new NativeAcceptBackend(binding, this, dependencies.acceptorOptions)
        : new JsAcceptBackend(this, binding);
    this.resolverBinding = binding;
  }

  /** Binds and starts accepting; resolves with the bound address. */
  listen(): Promise<net.AddressInfo> {
    if (this.state === 'closing' || this.state === 'closed') {
      return Promise.reject(codedError(ErrorCodes.LISTENER_CLOSED, 'the listener is closed'));
    }
    if (this.listenPromise) return this.listenPromise;
    this.state = 'opening';
    this.listenPromise = this.open().then(
      (address) => {
        if (this.state !== 'opening') throw codedError(ErrorCodes.LISTENER_CLOSED, 'the listener was closed while opening');
        this.state = 'listening';
        this.lastPort = address.port;
        debug('listening on %s:%d (%s backend)', address.address, address.port, this.backend);
        this.emit('listening', address);
        return address;
      },
      (error: unknown) => {
        this.state = 'closed';
        throw error;
      },
    );
    return this.listenPromise;
  }

  private async open(): Promise<net.AddressInfo> {
    const backlog = this.options.backlog ?? DEFAULT_BACKLOG;
    let target: ListenTarget;
    if (this.options.fd !== undefined) {
      target = { kind: 'fd', fd: this.options.fd, backlog };
    } else {
      const address = await resolveListenAddress(this.options.host, this.options.port ?? 0, this.resolverBinding);
      target = { kind: 'address', address, backlog };
    }
    return this.acceptBackend.open(target);
  }

  address(): net.AddressInfo | null {
    return this.state === 'listening' ? this.acceptBackend.address() : null;
  }

  stats(): ListenerStats {
    const accept = this.acceptBackend.counters();
    const book = this.registry.counters();
    const acceptRetries: Record<string, number> = {};
    for (const [errno, count] of Object.entries(accept.retriesByErrno)) acceptRetries[errnoName(Number(errno))] = count;
    return {
      accepted: accept.accepted,
      closed: book.closed,
      active: book.active,
      leaked: accept.accepted - book.closed - book.active,
      handshakes: book.handshakes,
      acceptRetries,
      acceptPauses: accept.pauses,
      sni: book.sni,
      handlerErrors: book.handlerErrors,
      idleTimeouts: book.idleTimeouts,
    };
  }

  /** The statistics in the Prometheus text format; `labels` are added to every sample. */
  metrics(labels: Readonly<Record<string, string>> = {}): string {
    return formatPrometheus(this.stats(), labels);
  }

  /**
   * Cross-checks the registry with the process's descriptors: tracked connections whose
   * descriptor is gone, and (on Linux) open connections on this port that nobody tracks.
   */
  audit(): AuditReport {
    const port = this.acceptBackend.address()?.port ?? this.lastPort;
    return auditDescriptors([...this.registry.records()].map(({ id, fd }) => ({ id, fd })), port);
  }

  /** Keep the process alive while listening (the default), or not. */
  ref(): this {
    this.acceptBackend.ref();
    return this;
  }

  unref(): this {
    this.acceptBackend.unref();
    return this;
  }

  // ---- AcceptSink: what the backend hands over -------------------------------------------

  onDescriptors(fds: Int32Array): void {
    for (let i = 0; i < fds.length; i++) {
      const fd = fds[i] as number;
      const id = this.registry.nextId();
      // TAKEN: from here the acceptor closes this descriptor only if the callback is cut short
      // (a worker terminated) before a socket's handle came to own it.
      fds[i] = SLOT_TAKEN;
      let socket: net.Socket | null;
      try {
        socket = this.adopt(fd);
      } catch (error) {
        fds[i] = SLOT_SETTLED;
        this.releaseUnwrapped(fd, id, error);
        continue;
      }
      // SETTLED: the socket's handle owns it (or, for null, the adopter does). No call sits
      // between adopt() returning and this store, so termination cannot land in between.
      fds[i] = SLOT_SETTLED;
      if (socket === null) {
        debug('descriptor %d was taken by the adopter: neither tracked nor closed here', fd);
        continue;
      }
      this.track(id, socket, fd);
    }
  }

  /** Wrapping failed: nothing owns the descriptor but us, so close it and count it closed. */
  private releaseUnwrapped(fd: number, id: number, error: unknown): void {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed by the failed wrap; either way it is released
    }
    this.registry.releaseUnregistered();
    const failure = codedError(ErrorCodes.CONNECTION_SETUP_FAILED, `wrapping descriptor ${fd} failed: ${errorOf(error).message}`, {
      cause: error,
    });
    this.emit('connectionError', failure, { id });
  }

  onSocket(socket: net.Socket): void {
    this.track(this.registry.nextId(), socket, descriptorOf(socket));
  }

  onRetry(error: SystemError): void {
    debug('accept retried after %s', error.code);
    if (channels.acceptRetry.hasSubscribers) channels.acceptRetry.publish({ listener: this, error });
    this.emit('acceptRetry', error);
  }

  onPause(error: SystemError, delayMs: number): void {
    debug('accept paused for %d ms after %s', delayMs, error.code);
    if (channels.acceptPause.hasSubscribers) channels.acceptPause.publish({ listener: this, error, delayMs });
    this.emit('acceptPaused', error, delayMs);
  }

  onFatal(error: SystemError): void {
    debug('accept failed with %s; closing', error.code);
    // The backend has closed the listening socket; close the rest, then report, as the
    // original re-raises and stops its server.
    void this.close();
    this.emit('error', error);
  }

  // ---- Connection lifecycle --------------------------------------------------------------

  private track(id: number, socket: net.Socket, fd: number | null): void {
    // The peer's address is read now, while the socket is surely open: a connection that fails
    // later by closing (FIN, RST, a timeout) can no longer be asked, and every report of it
    // (tlsClientError, logs) still names the client. Node caches it for the handler too.
    const record = this.registry.register(id, socket, fd, peerOf(socket));
    socket.once('close', () => {
      this.registry.release(id);
      if (channels.connectionClose.hasSubscribers) channels.connectionClose.publish({ listener: this, id });
    });
    // A peer's reset must not become an uncaught 'error'; the handler may add its own listener.
    socket.on('error', (error: Error) => debug('connection %d: %s', id, error.message));
    if (channels.accept.hasSubscribers) channels.accept.publish({ listener: this, id, fd });
    if (this.state === 'closing' || this.state === 'closed') {
      socket.destroy();
      return;
    }
    if (this.options.idleTimeout !== undefined) this.watchIdle(record, socket);
    let settled = false;
    this.setup.start(
      socket,
      record,
      (served, info, handshake) => {
        if (settled) return;
        settled = true;
        if (handshake) this.countHandshake(record, handshake);
        this.serve(record, served, info);
      },
      (error, kind) => {
        if (settled) return;
        settled = true;
        this.failSetup(record, error, kind);
      },
    );
  }

  private watchIdle(record: ConnectionRecord, socket: net.Socket): void {
    socket.setTimeout(this.options.idleTimeout ?? 0, () => {
      this.registry.idleTimeouts++;
      // Whichever layer notices the destroy first, a setup that ends here ends as idle.
      record.endedBy ??= 'idle';
      const target = record.served ?? socket;
      target.destroy(codedError(ErrorCodes.IDLE_TIMEOUT, `connection ${record.id} idle for ${this.options.idleTimeout} ms`));
    });
  }

  private countHandshake(record: ConnectionRecord, handshake: HandshakeOutcome): void {
    this.registry.handshakes.completed++;
    if (handshake.sniCredentialUsed) this.registry.sni.sniCredential++;
    else this.registry.sni.primaryCredential++;
    if (channels.handshakeDone.hasSubscribers) channels.handshakeDone.publish({ listener: this, id: record.id, ...handshake });
  }

  private failSetup(record: ConnectionRecord, error: CodedError, kind: 'failed' | 'timedOut'): void {
    (record.served ?? record.socket).destroy();
    record.socket.destroy();
    if (record.endedBy === 'listener') {
      // close() (or a fatal accept error) cut the handshake short: not the client's failure.
      this.registry.handshakes.aborted++;
      return;
    }
    // One code per cause, whichever layer saw the end first.
    const failure =
      record.endedBy === 'idle' && error.code !== ErrorCodes.IDLE_TIMEOUT
        ? codedError(ErrorCodes.IDLE_TIMEOUT, `connection ${record.id} idle for ${this.options.idleTimeout} ms during setup`, { cause: error })
        : error;
    if (kind === 'timedOut') this.registry.handshakes.timedOut++;
    else this.registry.handshakes.failed++;
    const info: SetupFailureInfo = { id: record.id, ...record.peer };
    if (channels.handshakeFailed.hasSubscribers) channels.handshakeFailed.publish({ listener: this, error: failure, info });
    this.emit('tlsClientError', failure, info);
  }

  private serve(record: ConnectionRecord, served: S, info: I): void {
    record.phase = 'handler';
    record.served = served;
    if (served !== record.socket) {
      served.on('error', (error: Error) => debug('connection %d: %s', record.id, error.message));
    }
    if (this.state === 'closing' || this.state === 'closed') {
      served.destroy();
      return;
    }
    let result: void | Promise<void>;
    try {
      result = this.handler(served, info);
    } catch (error) {
      this.failHandler(record, served, info, error);
      return;
    }
    if (isPromiseLike(result)) {
      result.then(
        () => this.closeGracefully(record, served),
        (error: unknown) => this.failHandler(record, served, info, error),
      );
    }
  }

  private failHandler(record: ConnectionRecord, served: S, info: I, error: unknown): void {
    this.registry.handlerErrors++;
    served.destroy();
    record.socket.destroy();
    const failure = codedError(ErrorCodes.HANDLER_FAILED, `handler of connection ${record.id} failed: ${errorOf(error).message}`, {
      cause: error,
    });
    this.emit('connectionError', failure, info);
  }

  /**
   * The handler is done: end(), drop whatever the peer still sends, and destroy() if the peer
   * has not closed within the graceful timeout (the original's graceful close: shutdown, then
   * read until EOF or the timeout).
   */
  private closeGracefully(record: ConnectionRecord, served: net.Socket): void {
    if (record.socket.destroyed) return;
    record.phase = 'closing';
    // Unref'd: one connection's peer lingering must not keep the process alive by itself.
    const timer = setTimeout(() => {
      served.destroy();
      record.socket.destroy();
    }, this.gracefulCloseTimeout);
    timer.unref();
    record.socket.once('close', () => clearTimeout(timer));
    served.end();
    // Reading and dropping the rest lets the peer's FIN be seen: a socket paused on unread
    // data never sees it.
    served.resume();
  }

  /**
   * A graceful close() reached a connection whose handler still runs: end our side and leave
   * the input to the handler; close()'s deadline destroys it if it does not finish in time.
   */
  private endWhileHandling(record: ConnectionRecord, served: net.Socket): void {
    if (record.socket.destroyed) return;
    served.end();
  }

  /**
   * Stops accepting (the listening socket is closed at once, so the port is free), closes
   * every active connection (ended gracefully first with `gracefulTimeout`), and resolves
   * once every descriptor is released. Calling it again returns the same promise.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.closePromise) return this.closePromise;
    rejectUnknownOptions('close', options);
    validateCloseOptions(options);
    const previous = this.state;
    this.state = 'closing';
    this.acceptBackend.close();
    const graceful = options.gracefulTimeout ?? 0;
    for (const record of [...this.registry.records()]) {
      if (graceful === 0 || record.phase === 'setup') this.abort(record);
      // A connection already closing keeps its course; the deadline below bounds it.
      else if (record.phase === 'handler') this.endWhileHandling(record, record.served ?? record.socket);
    }
    // The one deadline of a graceful close. Unlike the per-connection timers it keeps the
    // process alive: a peer that never reads or never closes must not leave close() pending
    // (and the code awaiting it never run) while the event loop drains and the process exits.
    let deadline: NodeJS.Timeout | undefined;
    if (graceful > 0 && this.registry.activeCount > 0) {
      deadline = setTimeout(() => {
        for (const record of [...this.registry.records()]) this.abort(record);
      }, graceful);
    }
    const opening = previous === 'opening' && this.listenPromise ? this.listenPromise.catch(() => undefined) : Promise.resolve();
    this.closePromise = opening
      .then(() => this.registry.whenEmpty())
      .then(() => {
        clearTimeout(deadline);
        this.state = 'closed';
        debug('closed: %j', this.stats());
        if (channels.listenerClose.hasSubscribers) channels.listenerClose.publish({ listener: this, stats: this.stats() });
        this.emit('close');
      });
    return this.closePromise;
  }

  /** Destroys a connection on the listener's own initiative (close()), not the client's. */
  private abort(record: ConnectionRecord): void {
    record.endedBy ??= 'listener';
    (record.served ?? record.socket).destroy();
    record.socket.destroy();
  }
}

/** The largest delay setTimeout() honours; above it Node fires after 1 ms instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Throws ERR_INVALID_OPTION unless `value` is undefined or an integer in [min, max]. */
export function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw codedError(ErrorCodes.INVALID_OPTION, `${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
}

function validateBaseOptions(options: BaseListenerOptions): void {
  if (typeof options !== 'object' || options === null) throw codedError(ErrorCodes.INVALID_OPTION, 'options must be an object');
  // Each of these reaches a system call or a timer: a fraction, NaN, Infinity or a huge value
  // would be truncated, wrapped or (for timers) turned into 1 ms, never what was asked.
  checkInteger('backlog', options.backlog, 0, 2 ** 31 - 1);
  checkInteger('gracefulCloseTimeout', options.gracefulCloseTimeout, 0, MAX_TIMER_MS);
  checkInteger('idleTimeout', options.idleTimeout, 0, MAX_TIMER_MS);
  checkInteger('fd', options.fd, 0, 2 ** 31 - 1);
  if (options.fd === undefined && options.port === undefined) {
    throw codedError(ErrorCodes.INVALID_OPTION, 'either port or fd is required');
  }
}

function validateCloseOptions(options: CloseOptions): void {
  if (typeof options !== 'object' || options === null) throw codedError(ErrorCodes.INVALID_OPTION, 'close options must be an object');
  checkInteger('gracefulTimeout', options.gracefulTimeout, 0, MAX_TIMER_MS);
}

function peerOf(socket: net.Socket): { remoteAddress?: string; remotePort?: number } {
  const { remoteAddress, remotePort } = socket;
  return remoteAddress !== undefined && remotePort !== undefined ? { remoteAddress, remotePort } : {};
}
