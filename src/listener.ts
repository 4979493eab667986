// The listener that both the plain-TCP and the TLS listeners are: it owns an accept backend,
// hands what it accepts to the connection lifecycle (src/connection_lifecycle.ts: setup,
// handler, graceful close), keeps the books, and closes.
//
// Descriptor ownership on this side:
//  - native backend: each batch goes through src/accept/descriptor_handoff.ts, whose slot
//    states say, descriptor by descriptor, whether the acceptor, a socket's libuv handle or
//    nobody yet owns it; a socket that owns one closes it when the socket closes.
//  - js backend: net.Server hands us a net.Socket that already owns its descriptor.
//  - the listening socket: the backend's once open() has it accepting; a listen() that fails
//    closes the backend (releasing whatever it got as far as starting) before it rejects.
//  - either way the connection is registered at once and released on the socket's 'close',
//    which Node emits after the handle (and so the descriptor) is closed.
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import type { AcceptBackend, AcceptSink, BackendKind, ListenTarget } from './accept/backend.js';
import { NativeAcceptBackend } from './accept/native_backend.js';
import { JsAcceptBackend } from './accept/js_backend.js';
import type { AcceptorOptions } from './native/binding.js';
import { peerAddressAt, primePeerAddress } from './accept/peer_address.js';
import type { BatchPeers } from './accept/peer_address.js';
import { chooseBackend } from './backend_choice.js';
import { handleDescriptor } from './node_internals.js';
import { adoptDescriptor, handOffBatch } from './accept/descriptor_handoff.js';
import type { DescriptorAdopter } from './accept/descriptor_handoff.js';
import { validateBaseOptions } from './listener_options.js';
import { ListenerLife } from './listener_life.js';
import type { BaseListenerOptions, CloseOptions } from './listener_options.js';
import { resolveListenAddress } from './address.js';
import { ConnectionRegistry } from './registry.js';
import { codedError, ErrorCodes } from './errors.js';
import type { SystemError } from './errors.js';
import { channels, debug } from './diagnostics.js';
import { formatPrometheus } from './metrics.js';
import { auditDescriptors } from './audit.js';
import { ConnectionLifecycle } from './connection_lifecycle.js';
import type { ConnectionSetup, Handler } from './connection_lifecycle.js';
import type { AuditReport } from './audit.js';
import { AdmissionCounters } from './accept/admission.js';
import { validateAcceptorOptions } from './accept/acceptor_options.js';
import type { AdmissionOptions, AdmissionReason } from './accept/admission.js';
import { collectStats } from './listener_stats.js';
import type { ClientAddressCounts } from './proxy/client_address_limit.js';
import type { ListenerStats } from './listener_stats.js';

export type { ListenerStats } from './listener_stats.js';

export type { BaseListenerOptions, CloseOptions } from './listener_options.js';
export { adoptDescriptor } from './accept/descriptor_handoff.js';
export type { DescriptorAdopter } from './accept/descriptor_handoff.js';
export type { ConnectionSetup, Handler, HandshakeOutcome, SetupFailureInfo } from './connection_lifecycle.js';

/** Parts of the listener a test (or an embedder) can replace. */
export interface ListenerDependencies {
  adoptDescriptor?: DescriptorAdopter;
  acceptorOptions?: AcceptorOptions;
  /** What accepts instead of the backend `options.backend` chooses (a worker thread's queue). */
  acceptBackend?: (sink: AcceptSink) => AcceptBackend;
  /** The book to keep (a worker thread's publishes its counters to the main thread). */
  registry?: ConnectionRegistry;
  /** With proxyProtocol, where maxConnectionsPerAddress counts header clients (a worker thread's: listener-wide). */
  clientAddressCounts?: ClientAddressCounts;
}

const DEFAULT_BACKLOG = 1024;
const DEFAULT_GRACEFUL_CLOSE_MS = 5000;

function errorOf(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

export class Listener<S extends net.Socket, I extends { id: number }> extends EventEmitter implements AcceptSink {
  readonly backend: BackendKind;
  protected readonly registry: ConnectionRegistry;
  private acceptBackend: AcceptBackend;
  /** A fresh backend: the first, and another after a failed listen() (see listener_life.ts). */
  private readonly newBackend: () => AcceptBackend;
  /** The adopter a test or an embedder gave (ListenerDependencies), if any. */
  private readonly givenAdopter: DescriptorAdopter | undefined;
  private readonly setup: ConnectionSetup<S, I>;
  private readonly options: BaseListenerOptions;
  private readonly connections: ConnectionLifecycle<S, I>;
  private readonly admission: AdmissionCounters;
  private readonly life = new ListenerLife(this);
  /** The addon, when it loads: its resolver serves both backends. */
  private readonly resolverBinding: ReturnType<typeof chooseBackend>['binding'];
  /** The port last bound, for audit() after the listening socket is gone. */
  private lastPort: number | null = null;
  /** ref()/unref(), for a backend made after a failed listen(). */
  private referenced = true;

  constructor(
    options: BaseListenerOptions,
    setup: ConnectionSetup<S, I>,
    handler: Handler<S, I>,
    dependencies: ListenerDependencies = {},
  ) {
    super();
    if (typeof handler !== 'function') throw codedError(ErrorCodes.INVALID_OPTION, 'handler must be a function');
    validateBaseOptions(options);
    if (options.workers !== undefined) {
      throw codedError(ErrorCodes.INVALID_OPTION, 'workers is an option of createListener() and createLocalTCPListener()');
    }
    this.options = options;
    this.registry = dependencies.registry ?? new ConnectionRegistry();
    this.connections = new ConnectionLifecycle(this, this.registry, setup, handler, {
      idleTimeout: options.idleTimeout,
      gracefulCloseTimeout: options.gracefulCloseTimeout ?? DEFAULT_GRACEFUL_CLOSE_MS,
    });
    this.givenAdopter = dependencies.adoptDescriptor;
    this.setup = setup;
    this.admission = new AdmissionCounters(admissionOptionsOf(options), validateAcceptorOptions(dependencies.acceptorOptions).addressTableSize);
    this.registry.observer = {
      setupEnded: () => {
        if (this.admission.setupEnded()) this.acceptBackend.resume();
      },
      released: (record) => {
        if (this.admission.released(record)) this.acceptBackend.resume();
      },
    };
    const { kind, binding } = chooseBackend(options.backend);
    this.backend = kind;
    this.newBackend = () =>
      dependencies.acceptBackend?.(this) ??
      (kind === 'native' && binding
        ? new NativeAcceptBackend(binding, this, dependencies.acceptorOptions, this.admission, setup.canFail)
        : new JsAcceptBackend(this, binding, this.admission));
    this.acceptBackend = this.newBackend();
    this.resolverBinding = binding;
  }

  /**
   * Binds and starts accepting; resolves with the bound address. A failure leaves nothing
   * bound and the listener new: listen() may be called again (listener_life.ts).
   */
  listen(): Promise<net.AddressInfo> {
    return this.life.listen({
      open: () => this.open(),
      opened: (address) => {
        this.lastPort = address.port;
        debug('listening on %s:%d (%s backend)', address.address, address.port, this.backend);
      },
      undo: () => {
        // Opening may have failed after the backend started accepting (an address it cannot
        // report): stop it, so nothing is accepted by a listener that never listened. A
        // closed backend stays closed; the next attempt gets a fresh one.
        this.acceptBackend.close();
        if (this.stopping) return;
        this.acceptBackend = this.newBackend();
        if (!this.referenced) this.acceptBackend.unref();
      },
    });
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

  /** close() has begun (LifecycleHost): connections that arrive now are destroyed at once. */
  get stopping(): boolean {
    return this.life.stopping;
  }

  address(): net.AddressInfo | null {
    return this.life.isListening ? this.acceptBackend.address() : null;
  }

  /**
   * The listening socket's descriptor while listening, for handing it to another process
   * (src/upgrade/): it stays this listener's, which closes it on close(); null otherwise.
   */
  listeningDescriptor(): number | null {
    return this.life.isListening ? this.acceptBackend.listeningDescriptor() : null;
  }

  /**
   * Stops accepting and touches no connection: the backend closes its listening descriptor
   * (close(), never shutdown(), so the socket and its queue live on in another process that
   * holds it), and connections still in TLS setup may finish it. close() ends the rest.
   */
  stopAccepting(): void {
    if (this.life.isListening) this.acceptBackend.close();
  }

  /** Connections still in setup (the TLS handshake): a drain waits for these before close(). */
  connectionsInSetup(): number {
    return this.registry.inSetupCount;
  }

  stats(): ListenerStats {
    return collectStats(this.acceptBackend.counters(), this.registry.counters());
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
    this.referenced = true;
    this.acceptBackend.ref();
    return this;
  }

  unref(): this {
    this.referenced = false;
    this.acceptBackend.unref();
    return this;
  }

  // ---- AcceptSink: what the backend hands over -------------------------------------------

  onDescriptors(fds: Int32Array, count: number, addressSlots?: Int32Array, peers?: BatchPeers): void {
    // A given adopter always wraps; otherwise the setup stage may open its own socket on the
    // descriptor (a TLSSocket with nothing under it), else a plain socket wraps it. Not with an
    // idleTimeout: the idle timer is the accepted socket's setTimeout(), and on one socket that
    // is the handler's too, whose own setTimeout() calls (Node's HTTP server makes them on every
    // keep-alive request) would replace or clear it, and which would hear its 'timeout'.
    const direct = this.options.idleTimeout === undefined ? this.setup.directAdopter?.() : undefined;
    const adopt = this.givenAdopter ?? direct ?? adoptDescriptor;
    handOffBatch(fds, count, adopt, this.registry, {
      wrapped: (id, socket, fd, index) => {
        if (peers !== undefined) primePeerAddress(socket, peerAddressAt(peers, index));
        this.connections.track(id, socket, fd);
        // The acceptor counted it against its peer's address: the registry counts it out.
        if (addressSlots !== undefined) {
          const record = this.registry.get(id);
          if (record !== undefined) record.addressSlot = addressSlots[index] ?? -1;
        }
      },
      returned: (fd, id, error) => this.releaseUnwrapped(fd, id, error),
    });
  }

  /**
   * Wrapping failed: the slot says who closes the descriptor (the acceptor, or the handle that
   * had taken it before the adopter threw). For the books it is closed either way.
   */
  private releaseUnwrapped(fd: number, id: number, error: unknown): void {
    this.registry.releaseUnregistered();
    const failure = codedError(ErrorCodes.CONNECTION_SETUP_FAILED, `wrapping descriptor ${fd} failed: ${errorOf(error).message}`, {
      cause: error,
    });
    this.emit('connectionError', failure, { id });
  }

  onSocket(socket: net.Socket, releaseAddress?: () => void): void {
    const id = this.registry.nextId();
    this.connections.track(id, socket, handleDescriptor(socket));
    // Registered until its 'close', which comes on a later tick: the record is there.
    const record = this.registry.get(id);
    if (record !== undefined) record.addressRelease = releaseAddress;
    else releaseAddress?.();
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

  onBackpressure(paused: boolean, reason: AdmissionReason): void {
    debug('accepting %s at %s', paused ? 'paused' : 'resumed', reason);
    this.emit('acceptBackpressure', paused, reason);
  }

  onFatal(error: SystemError): void {
    debug('accept failed with %s; closing', error.code);
    // The backend has closed the listening socket; close the rest, then report, as the
    // original re-raises and stops its server.
    void this.close();
    this.emit('error', error);
  }

  /**
   * Stops accepting (the listening socket is closed at once, so the port is free), closes
   * every active connection (ended gracefully first with `gracefulTimeout`), and resolves
   * once every descriptor is released. Calling it again returns the same promise.
   */
  close(options: CloseOptions = {}): Promise<void> {
    return this.life.close(
      options,
      async ({ gracefulTimeout }, opening) => {
        this.acceptBackend.close();
        const graceful = gracefulTimeout ?? 0;
        for (const record of [...this.registry.records()]) {
          if (graceful === 0 || record.phase === 'setup') this.connections.abort(record);
          // A connection already closing keeps its course; the deadline below bounds it.
          else if (record.phase === 'handler') this.connections.endWhileHandling(record);
        }
        // The one deadline of a graceful close. Unlike the per-connection timers it keeps the
        // process alive: a peer that never reads or never closes must not leave close() pending
        // (and the code awaiting it never run) while the event loop drains and the process exits.
        let deadline: NodeJS.Timeout | undefined;
        if (graceful > 0 && this.registry.activeCount > 0) {
          deadline = setTimeout(() => {
            for (const record of [...this.registry.records()]) this.connections.abort(record);
          }, graceful);
        }
        await opening;
        await this.registry.whenEmpty();
        clearTimeout(deadline);
      },
      () => {
        debug('closed: %j', this.stats());
        if (channels.listenerClose.hasSubscribers) channels.listenerClose.publish({ listener: this, stats: this.stats() });
      },
    );
  }
}

function admissionOptionsOf(options: BaseListenerOptions & { maxPendingHandshakes?: number }): AdmissionOptions {
  const { maxConnections, maxPendingHandshakes, maxConnectionsPerAddress, perAddressIPv6Prefix, maxQueuedConnections, deferAccept } = options;
  return {
    ...(maxConnections !== undefined ? { maxConnections } : {}),
    ...(maxPendingHandshakes !== undefined ? { maxPendingHandshakes } : {}),
    // With proxyProtocol the socket's peer is the balancer: the PROXY stage counts the client instead.
    ...(maxConnectionsPerAddress !== undefined && options.proxyProtocol === undefined ? { maxConnectionsPerAddress } : {}),
    ...(perAddressIPv6Prefix !== undefined ? { perAddressIPv6Prefix } : {}),
    ...(deferAccept !== undefined ? { deferAccept } : {}),
    ...(maxQueuedConnections !== undefined ? { maxQueuedConnections } : {}),
  };
}
