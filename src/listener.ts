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
  handshakes: { completed: number; failed: number; timedOut: number };
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
    const record = this.registry.register(id, socket, fd);
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
    if (kind === 'timedOut') this.registry.handshakes.timedOut++;
    else this.registry.handshakes.failed++;
    // The peer's address is read before destroy(), after which Node no longer has it.
    const info: SetupFailureInfo = { id: record.id };
    if (record.socket.remoteAddress !== undefined) info.remoteAddress = record.socket.remoteAddress;
    if (record.socket.remotePort !== undefined) info.remotePort = record.socket.remotePort;
    (record.served ?? record.socket).destroy();
    record.socket.destroy();
    if (channels.handshakeFailed.hasSubscribers) channels.handshakeFailed.publish({ listener: this, error, info });
    this.emit('tlsClientError', error, info);
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

  /** end(), then destroy() if the peer has not closed within the graceful timeout. */
  private closeGracefully(record: ConnectionRecord, served: net.Socket, timeout = this.gracefulCloseTimeout): void {
    if (record.socket.destroyed) return;
    record.phase = 'closing';
    const timer = setTimeout(() => {
      served.destroy();
      record.socket.destroy();
    }, timeout);
    timer.unref();
    record.socket.once('close', () => clearTimeout(timer));
    served.end();
  }

  /**
   * Stops accepting (the listening socket is closed at once, so the port is free), closes
   * every active connection (ended gracefully first with `gracefulTimeout`), and resolves
   * once every descriptor is released. Calling it again returns the same promise.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.closePromise) return this.closePromise;
    const previous = this.state;
    this.state = 'closing';
    this.acceptBackend.close();
    const graceful = options.gracefulTimeout;
    for (const record of [...this.registry.records()]) {
      if (graceful !== undefined && graceful > 0 && record.phase !== 'setup') {
        this.closeGracefully(record, record.served ?? record.socket, graceful);
      } else {
        (record.served ?? record.socket).destroy();
        record.socket.destroy();
      }
    }
    const opening = previous === 'opening' && this.listenPromise ? this.listenPromise.catch(() => undefined) : Promise.resolve();
    this.closePromise = opening
      .then(() => this.registry.whenEmpty())
      .then(() => {
        this.state = 'closed';
        debug('closed: %j', this.stats());
        if (channels.listenerClose.hasSubscribers) channels.listenerClose.publish({ listener: this, stats: this.stats() });
        this.emit('close');
      });
    return this.closePromise;
  }
}

function validateBaseOptions(options: BaseListenerOptions): void {
  if (typeof options !== 'object' || options === null) throw codedError(ErrorCodes.INVALID_OPTION, 'options must be an object');
  const positive = (name: keyof BaseListenerOptions): void => {
    const value = options[name];
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value < 0)) {
      throw codedError(ErrorCodes.INVALID_OPTION, `${name} must be a non-negative number, got ${String(value)}`);
    }
  };
  positive('backlog');
  positive('gracefulCloseTimeout');
  positive('idleTimeout');
  if (options.fd !== undefined && (!Number.isInteger(options.fd) || options.fd < 0)) {
    throw codedError(ErrorCodes.INVALID_OPTION, `fd must be a descriptor number, got ${String(options.fd)}`);
  }
  if (options.fd === undefined && options.port === undefined) {
    throw codedError(ErrorCodes.INVALID_OPTION, 'either port or fd is required');
  }
}
