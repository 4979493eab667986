// The exact book of every connection's life: accepted (counted by the acceptor), active
// (tracked here from registration until its descriptor is released) and closed.
// leaked = accepted - closed - active exposes a descriptor lost anywhere in between.
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { DurationHistogram } from './duration_histogram.js';
import type { DurationHistogramSnapshot } from './duration_histogram.js';
import type { SetupDeadline } from './tls/setup_deadlines.js';

export type ConnectionPhase = 'setup' | 'handler' | 'closing';

export interface ConnectionRecord {
  readonly id: number;
  /** The socket that owns the descriptor (the net.Socket under any TLS layer). */
  readonly socket: net.Socket;
  /** The descriptor number while open, for audit(); null where the platform hides it. */
  readonly fd: number | null;
  readonly openedAt: number;
  /** performance.now() at registration: where the setup's duration is counted from. */
  readonly setupStartedAt: number;
  phase: ConnectionPhase;
  /** The socket handed to the handler (a TLSSocket for TLS listeners), once there is one. */
  served?: net.Socket;
  /**
   * The peer, read at accept; empty where the socket had none (already reset, or a pipe).
   * Behind a PROXY protocol load balancer, the client the header names once it is read.
   */
  peer: { remoteAddress?: string; remotePort?: number };
  /** Set when the listener itself ends the connection: by close(), or the idle timeout. */
  endedBy?: 'listener' | 'idle';
  /** The setup stage has reported (done or fail): a second report is ignored. */
  setupSettled?: boolean;
  /** The handler returned a promise that has not settled yet. */
  handlerPending?: boolean;
  /** The gracefulCloseTimeout deadline, once our side has ended; cancelled on release. */
  closeDeadline?: SetupDeadline;
  /** Its slot in the acceptor's per-address counts (src/accept/admission.ts), or -1/absent. */
  addressSlot?: number;
  /**
   * Gives back its count in a JS per-address table (the js backend's, the PROXY stage's);
   * called once when the connection is released, so never lost to a handler that removes its
   * socket's listeners.
   */
  addressRelease?: (() => void) | undefined;
}

/** Told when a registered connection leaves setup and when it is released (admission control). */
export interface RegistryObserver {
  setupEnded(record: ConnectionRecord): void;
  released(record: ConnectionRecord): void;
}

export interface SetupCounters {
  completed: number;
  /** The client failed the setup: a TLS error, a rejected certificate, a close, an idle timeout. */
  failed: number;
  timedOut: number;
  /** The listener cut the setup short (close()): not counted as a client failure. */
  aborted: number;
}

export interface RegistryCounters {
  closed: number;
  active: number;
  handshakes: SetupCounters;
  sni: { sniCredential: number; primaryCredential: number };
  handlerErrors: number;
  idleTimeouts: number;
  proxyProtocol: ProxyProtocolRejections;
  /** Closed over maxConnectionsPerAddress once their PROXY header named the client. */
  rejectedPerAddress: number;
  /** ... or refused as a new client while the per-address table was full. */
  rejectedAddressTableFull: number;
  /** Registered and not yet past their setup (the TLS handshake, a PROXY header). */
  inSetup: number;
  /** Failed or timed-out setups by their error's code ('ERR_CLIENT_CLOSED': 2). */
  setupFailures: Record<string, number>;
  /** How long completed setups took, from registration to the handler. */
  handshakeTime: DurationHistogramSnapshot;
}

/** Connections closed before TLS for their PROXY protocol header. */
export interface ProxyProtocolRejections {
  /** Malformed, oversized, of a version not accepted, or missing. */
  invalid: number;
  /** From a peer not in trustedProxies. */
  untrusted: number;
  /** Health checks of a trusted proxy: a PROXY header, then a close with no byte after it. */
  healthChecks: number;
}

export class ConnectionRegistry {
  // Entries leave the map the moment their descriptor is released, so the map never keeps
  // a finished connection alive (the original holds weak references for the same reason).
  private readonly active = new Map<number, ConnectionRecord>();
  private lastId = 0;
  private closed = 0;
  private readonly emptyWaiters: Array<() => void> = [];
  readonly handshakes: SetupCounters = { completed: 0, failed: 0, timedOut: 0, aborted: 0 };
  readonly sni = { sniCredential: 0, primaryCredential: 0 };
  handlerErrors = 0;
  idleTimeouts = 0;
  readonly proxyProtocol: ProxyProtocolRejections = { invalid: 0, untrusted: 0, healthChecks: 0 };
  rejectedPerAddress = 0;
  rejectedAddressTableFull = 0;
  readonly setupFailures: Record<string, number> = {};
  readonly handshakeTime = new DurationHistogram();
  private inSetup = 0;
  observer: RegistryObserver | null = null;

  /** Ids count 1, 2, 3, ... per listener, one for every accepted connection. */
  nextId(): number {
    return ++this.lastId;
  }

  register(id: number, socket: net.Socket, fd: number | null, peer: ConnectionRecord['peer'] = {}): ConnectionRecord {
    const record: ConnectionRecord = { id, socket, fd, peer, openedAt: Date.now(), setupStartedAt: performance.now(), phase: 'setup' };
    this.active.set(id, record);
    this.inSetup++;
    return record;
  }

  /** The connection's descriptor is released: counted once, whatever ended it. */
  release(id: number): void {
    const record = this.active.get(id);
    if (record === undefined) return;
    this.active.delete(id);
    if (record.phase === 'setup') this.inSetup--;
    this.closed++;
    this.observer?.released(record);
    if (this.active.size === 0) this.notifyEmpty();
  }

  /** Setup is over: the handler has the connection. */
  enterHandler(record: ConnectionRecord): void {
    if (record.phase === 'setup') this.inSetup--;
    record.phase = 'handler';
    this.observer?.setupEnded(record);
  }

  /** A descriptor that was closed before it could be registered (its wrapping failed). */
  releaseUnregistered(): void {
    this.closed++;
  }

  /** A failed or timed-out setup, by its error's code. */
  countSetupFailure(code: string): void {
    this.setupFailures[code] = (this.setupFailures[code] ?? 0) + 1;
  }

  /** A completed setup took `ms`. */
  recordHandshakeTime(ms: number): void {
    this.handshakeTime.record(ms);
  }

  get(id: number): ConnectionRecord | undefined {
    return this.active.get(id);
  }

  records(): IterableIterator<ConnectionRecord> {
    return this.active.values();
  }

  get activeCount(): number {
    return this.active.size;
  }

  /** Connections registered and not yet past their setup (what maxPendingHandshakes counts). */
  get inSetupCount(): number {
    return this.inSetup;
  }

  get closedCount(): number {
    return this.closed;
  }

  /** Resolves once no connection is active. */
  whenEmpty(): Promise<void> {
    if (this.active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  private notifyEmpty(): void {
    for (const waiter of this.emptyWaiters.splice(0)) waiter();
  }

  counters(): RegistryCounters {
    return {
      closed: this.closed,
      active: this.active.size,
      handshakes: { ...this.handshakes },
      sni: { ...this.sni },
      handlerErrors: this.handlerErrors,
      idleTimeouts: this.idleTimeouts,
      proxyProtocol: { ...this.proxyProtocol },
      rejectedPerAddress: this.rejectedPerAddress,
      rejectedAddressTableFull: this.rejectedAddressTableFull,
      inSetup: this.inSetup,
      setupFailures: { ...this.setupFailures },
      handshakeTime: this.handshakeTime.snapshot(),
    };
  }
}
