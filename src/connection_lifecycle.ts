// One connection's life after accept: registered at once, its setup stage run (nothing for
// TCP, the TLS handshake for TLS) under the idle timeout, then its handler, then a graceful
// close; or a failure reported with one code per cause. Every path ends in the socket's
// 'close', which releases the connection from the registry exactly once.
//
// No closure is made per connection on the common path (as lib/_http_server.js): the record
// and its lifecycle live on the socket (both sockets, when a TLSSocket sits on a net.Socket)
// under symbols, and the socket listeners and timers are module-level functions.
import type { EventEmitter } from 'node:events';
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ConnectionRecord, ConnectionRegistry } from './registry.js';
import { codedError, ErrorCodes } from './errors.js';
import type { CodedError } from './errors.js';
import type { DescriptorAdopter } from './accept/descriptor_handoff.js';
import { channels, debug } from './diagnostics.js';
import { keep, unkeep } from './kept_listener.js';
import { SetupDeadlines } from './tls/setup_deadlines.js';

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
  /**
   * Whether start() may call fail(). Only then is the peer's address read at accept (one
   * getpeername() per connection), for the failure report: a setup that cannot fail (plain
   * TCP) does not pay for it.
   */
  readonly canFail: boolean;
  /**
   * Optional: an adopter that wraps an accepted descriptor in the very socket this stage serves
   * from (a TLSSocket opened on it, src/tls/direct_tls_socket.ts), when nothing has to be read
   * from a plain socket first; undefined when the descriptor must be wrapped the usual way.
   * Asked once per batch; start() then gets what the adopter made.
   */
  directAdopter?(): DescriptorAdopter | undefined;
  /**
   * Optional: the same behind a PROXY balancer, for the PROXY stage in front of this one: an
   * adopter whose connections have the header (of `versions`: bit 0 version 1, bit 1 version 2)
   * read natively first (src/tls/peeked_hello.ts); undefined when it must be read in JS.
   */
  proxiedAdopter?(versions: number): DescriptorAdopter | undefined;
  start(socket: net.Socket, record: ConnectionRecord, done: SetupDone<S, I>, fail: SetupFail): void;
}

/** Setup succeeded: `served` goes to the handler with `info`. The same function for every connection. */
export type SetupDone<S extends net.Socket, I> = (record: ConnectionRecord, served: S, info: I, handshake?: HandshakeOutcome) => void;
/** Setup failed. The same function for every connection. */
/** 'healthCheck': a trusted proxy's check connection that ended after its PROXY header (src/proxy/proxy_setup.ts). */
export type SetupFail = (record: ConnectionRecord, error: CodedError, kind: SetupFailKind) => void;
export type SetupFailKind = 'failed' | 'timedOut' | 'healthCheck';

/** What a setup stage with a handshake reports on success, for the statistics. */
export interface HandshakeOutcome {
  sniCredentialUsed: boolean;
}

export type Handler<S extends net.Socket, I> = (socket: S, info: I) => void | Promise<void>;

/** What a connection's life needs from the listener that owns it. */
export interface LifecycleHost extends EventEmitter {
  /** close() has begun: a connection that arrives now is destroyed at once. */
  readonly stopping: boolean;
}

export interface LifecycleTiming {
  idleTimeout?: number;
  gracefulCloseTimeout: number;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function errorOf(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

function peerOf(socket: net.Socket): { remoteAddress?: string; remotePort?: number } {
  const { remoteAddress, remotePort } = socket;
  return remoteAddress !== undefined && remotePort !== undefined ? { remoteAddress, remotePort } : {};
}

/** Destroys the served socket (a TLSSocket, when there is one) and the socket under it. */
function destroyBoth(record: ConnectionRecord): void {
  (record.served ?? record.socket).destroy();
  record.socket.destroy();
}

const kRecord = Symbol('native-tls-listener.record');
const kLifecycle = Symbol('native-tls-listener.lifecycle');

/** A socket of a tracked connection: the one that owns the descriptor, or the served one above it. */
type Tracked = net.Socket & {
  [kRecord]?: ConnectionRecord;
  [kLifecycle]?: ConnectionLifecycle<net.Socket, { id: number }>;
};

function mark(socket: net.Socket, record: ConnectionRecord, lifecycle: ConnectionLifecycle<net.Socket, { id: number }>): void {
  (socket as Tracked)[kRecord] = record;
  (socket as Tracked)[kLifecycle] = lifecycle;
}

/** The descriptor's socket closed: released, once. */
function onConnectionClose(this: Tracked): void {
  const record = this[kRecord];
  const lifecycle = this[kLifecycle];
  unkeep(this, 'close');
  if (record !== undefined && lifecycle !== undefined) lifecycle.released(record);
}

/** A peer's reset must not become an uncaught 'error'; the handler may add its own listener. */
function onConnectionError(this: Tracked, error: Error): void {
  debug('connection %d: %s', this[kRecord]?.id ?? 0, error.message);
}

function onConnectionIdle(this: Tracked): void {
  const record = this[kRecord];
  if (record !== undefined) this[kLifecycle]?.idle(record, this);
}

/** The served socket's writing side ended ('finish'): end() called and flushed. */
function onServedFinish(this: Tracked): void {
  const record = this[kRecord];
  if (record !== undefined) this[kLifecycle]?.ended(record, this);
}

/** gracefulCloseTimeout passed after our side ended. */
function onCloseDeadline(record: ConnectionRecord): void {
  destroyBoth(record);
}

export class ConnectionLifecycle<S extends net.Socket, I extends { id: number }> {
  /**
   * The gracefulCloseTimeout deadlines: every connection gets the same time, so one queue and
   * one timer serve them all, instead of a setTimeout and a clearTimeout per connection.
   */
  private readonly closeDeadlines: SetupDeadlines;

  constructor(
    private readonly host: LifecycleHost,
    private readonly registry: ConnectionRegistry,
    private readonly setup: ConnectionSetup<S, I>,
    private readonly handler: Handler<S, I>,
    private readonly timing: LifecycleTiming,
  ) {
    this.closeDeadlines = new SetupDeadlines(timing.gracefulCloseTimeout);
  }

  /** setup.start()'s callbacks, made once for every connection. */
  private readonly setupDone: SetupDone<S, I> = (record, served, info, handshake) => {
    if (record.setupSettled === true) return;
    record.setupSettled = true;
    if (handshake) this.countHandshake(record, handshake);
    this.serve(record, served, info);
  };

  private readonly setupFail: SetupFail = (record, error, kind) => {
    if (record.setupSettled === true) return;
    record.setupSettled = true;
    this.failSetup(record, error, kind);
  };

  track(id: number, socket: net.Socket, fd: number | null): void {
    // The peer's address is read now, while the socket is surely open: a connection that fails
    // later by closing (FIN, RST, a timeout) can no longer be asked, and every report of it
    // (tlsClientError, logs) still names the client. Node caches it for the handler too.
    // Only where setup can fail: plain TCP skips the getpeername() it would cost.
    const record = this.registry.register(id, socket, fd, this.setup.canFail ? peerOf(socket) : {});
    mark(socket, record, this as unknown as ConnectionLifecycle<net.Socket, { id: number }>);
    socket.on('error', onConnectionError);
    if (channels.accept.hasSubscribers) channels.accept.publish({ listener: this.host, id, fd });
    if (this.host.stopping) {
      socket.on('close', onConnectionClose);
      socket.destroy();
      return;
    }
    if (this.timing.idleTimeout !== undefined) {
      socket.setTimeout(this.timing.idleTimeout);
      socket.on('timeout', onConnectionIdle);
    }
    // Kept from serve() on, where the handler gets this very socket (see kept_listener.ts).
    if (!this.setup.canFail) {
      // Served within start() (plain TCP): released before the handler's own 'close' listeners.
      socket.on('close', onConnectionClose);
      this.setup.start(socket, record, this.setupDone, this.setupFail);
      return;
    }
    this.setup.start(socket, record, this.setupDone, this.setupFail);
    // After the setup's own 'close' listener ('close' is never emitted synchronously, and a
    // setup that can fail serves later, so the handler's listeners still come after this one):
    // a client that leaves during setup is counted as the setup's failure before its
    // connection is released. A worker publishes the release to the main thread at once, and
    // its failure counts go by another way (workers/setup_book.ts): the other order let
    // stats() show the connection gone without its failure.
    socket.on('close', onConnectionClose);
  }

  /** The connection's descriptor is released (its socket's 'close'). */
  released(record: ConnectionRecord): void {
    if (record.closeDeadline !== undefined) SetupDeadlines.cancel(record.closeDeadline);
    this.registry.release(record.id);
    if (channels.connectionClose.hasSubscribers) channels.connectionClose.publish({ listener: this.host, id: record.id });
  }

  /** idleTimeout passed on the descriptor's socket. */
  idle(record: ConnectionRecord, socket: net.Socket): void {
    this.registry.idleTimeouts++;
    // Whichever layer notices the destroy first, a setup that ends here ends as idle.
    record.endedBy ??= 'idle';
    const target = record.served ?? socket;
    target.destroy(codedError(ErrorCodes.IDLE_TIMEOUT, `connection ${record.id} idle for ${this.timing.idleTimeout} ms`));
  }

  private countHandshake(record: ConnectionRecord, handshake: HandshakeOutcome): void {
    this.registry.handshakes.completed++;
    this.registry.recordHandshakeTime(performance.now() - record.setupStartedAt);
    if (handshake.sniCredentialUsed) this.registry.sni.sniCredential++;
    else this.registry.sni.primaryCredential++;
    if (channels.handshakeDone.hasSubscribers) channels.handshakeDone.publish({ listener: this.host, id: record.id, ...handshake });
  }

  private failSetup(record: ConnectionRecord, error: CodedError, kind: SetupFailKind): void {
    destroyBoth(record);
    if (record.endedBy === 'listener') {
      // close() (or a fatal accept error) cut the handshake short: not the client's failure.
      this.registry.handshakes.aborted++;
      return;
    }
    if (kind === 'healthCheck') {
      // A trusted proxy checking that the port answers: neither a failure nor worth a log line.
      this.registry.proxyProtocol.healthChecks++;
      return;
    }
    // One code per cause, whichever layer saw the end first.
    const failure =
      record.endedBy === 'idle' && error.code !== ErrorCodes.IDLE_TIMEOUT
        ? codedError(ErrorCodes.IDLE_TIMEOUT, `connection ${record.id} idle for ${this.timing.idleTimeout} ms during setup`, { cause: error })
        : error;
    // Over maxConnectionsPerAddress by its PROXY header: admission control, not a failed handshake.
    if (failure.code === ErrorCodes.PER_ADDRESS_LIMIT) this.registry.rejectedPerAddress++;
    else if (failure.code === ErrorCodes.ADDRESS_TABLE_FULL) this.registry.rejectedAddressTableFull++;
    else {
      if (kind === 'timedOut') this.registry.handshakes.timedOut++;
      else this.registry.handshakes.failed++;
      this.registry.countSetupFailure(failure.code);
    }
    if (failure.code === ErrorCodes.PROXY_PROTOCOL_INVALID) this.registry.proxyProtocol.invalid++;
    else if (failure.code === ErrorCodes.PROXY_PROTOCOL_UNTRUSTED) this.registry.proxyProtocol.untrusted++;
    const info: SetupFailureInfo = { id: record.id, ...record.peer };
    if (channels.handshakeFailed.hasSubscribers) channels.handshakeFailed.publish({ listener: this.host, error: failure, info });
    this.host.emit('tlsClientError', failure, info);
  }

  private serve(record: ConnectionRecord, served: S, info: I): void {
    this.registry.enterHandler(record);
    record.served = served;
    if (served !== record.socket) {
      mark(served, record, this as unknown as ConnectionLifecycle<net.Socket, { id: number }>);
      served.on('error', onConnectionError);
    } else {
      // The handler holds the descriptor's own socket: its 'close' listener must stay.
      keep(served, 'close', onConnectionClose);
    }
    if (this.host.stopping) {
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
    // Ended by the handler while its promise runs: the bound starts then, the input stays its.
    // A handler that returned nothing owns the connection until it ends it; from then on the
    // close is the listener's, bounded as after a promise. Without this, a peer's
    // close_notify and FIN behind input the handler never read would go unseen for good.
    if (isPromiseLike(result)) {
      record.handlerPending = true;
      result.then(
        () => {
          record.handlerPending = false;
          this.closeGracefully(record, served);
        },
        (error: unknown) => {
          record.handlerPending = false;
          this.failHandler(record, served, info, error);
        },
      );
    }
    if (served.writableFinished) this.ended(record, served);
    else served.on('finish', onServedFinish);
  }

  /** Our side of the connection has ended ('finish'). */
  ended(record: ConnectionRecord, served: net.Socket): void {
    if (record.handlerPending === true) this.boundClose(record);
    else if (record.phase === 'handler') this.closeGracefully(record, served);
  }

  /**
   * Starts the gracefulCloseTimeout deadline once per connection: the peer has that long to
   * close after our side ended, whoever ended it. Its timer is unref'd: one connection's peer
   * lingering must not keep the process alive by itself. Cancelled on release.
   */
  private boundClose(record: ConnectionRecord): void {
    if (record.socket.destroyed || record.closeDeadline !== undefined) return;
    record.closeDeadline = this.closeDeadlines.add(onCloseDeadline, record);
  }

  private failHandler(record: ConnectionRecord, served: S, info: I, error: unknown): void {
    this.registry.handlerErrors++;
    served.destroy();
    record.socket.destroy();
    const failure = codedError(ErrorCodes.HANDLER_FAILED, `handler of connection ${record.id} failed: ${errorOf(error).message}`, {
      cause: error,
    });
    this.host.emit('connectionError', failure, info);
  }

  /**
   * The handler is done (its promise settled, or it returned nothing and ended the socket):
   * end(), drop whatever the peer still sends, and destroy() if the peer has not closed within
   * the graceful timeout (the original's graceful close: shutdown, then
   * read until EOF or the timeout).
   */
  private closeGracefully(record: ConnectionRecord, served: net.Socket): void {
    if (record.socket.destroyed) return;
    record.phase = 'closing';
    this.boundClose(record);
    // Not twice: end() on an ended stream builds an ERR_STREAM_ALREADY_FINISHED (a stack trace
    // and a message) only to drop it, a measurable cost per connection.
    if (!served.writableEnded) served.end();
    // Reading and dropping the rest lets the peer's FIN be seen: a socket paused on unread
    // data never sees it.
    served.resume();
  }

  /**
   * A graceful close() reached a connection whose handler still runs: end our side and leave
   * the input to the handler; close()'s deadline destroys it if it does not finish in time.
   */
  endWhileHandling(record: ConnectionRecord): void {
    if (record.socket.destroyed) return;
    (record.served ?? record.socket).end();
  }

  /** Destroys a connection on the listener's own initiative (close()), not the client's. */
  abort(record: ConnectionRecord): void {
    record.endedBy ??= 'listener';
    destroyBoth(record);
  }
}
