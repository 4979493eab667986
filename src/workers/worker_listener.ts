// A listener whose connections are served by worker threads: the listening socket is accepted
// on the addon's own thread (native/dispatch_state.h), each descriptor handed to the worker
// with the fewest active connections, where the same listener as on one thread (TLS setup,
// handler, registry) serves it. This class is the main thread's side: it opens the socket,
// starts the workers, keeps one book for all of them, and closes.
//
// Descriptor ownership: the listening socket is this class's until `new Dispatcher()` takes
// it (closed here if that throws), then the dispatcher's. Accepted descriptors never touch
// this thread (dispatch_state.h and worker_queue.h say who owns them on the way).
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import fs from 'node:fs';
import type { WorkerOptions } from 'node:worker_threads';
import { resolveListenAddress } from '../address.js';
import { loadNativeBinding } from '../native/load.js';
import { AcceptEventKind } from '../native/binding.js';
import type { AcceptorOptions } from '../native/binding.js';
import { validateAcceptorOptions } from '../accept/acceptor_options.js';
import { adoptionError } from '../accept/adoption.js';
import { codedError, errnoName, ErrorCodes, systemError } from '../errors.js';
import { validateBaseOptions } from '../listener_options.js';
import { ListenerLife } from '../listener_life.js';
import type { BaseListenerOptions, CloseOptions, ListenerStats } from '../listener.js';
import { formatPrometheus } from '../metrics.js';
import { auditDescriptors } from '../audit.js';
import type { AuditReport } from '../audit.js';
import { channels, debug } from '../diagnostics.js';
import { dispatchBindingOf } from './dispatch_binding.js';
import type { DispatchBinding, NativeDispatcher } from './dispatch_binding.js';
import { resolveWorkersOptions } from './worker_options.js';
import type { ResolvedWorkersOptions, WorkersOptions } from './worker_options.js';
import { WorkerSlot } from './worker_slot.js';
import type { SlotHost } from './worker_slot.js';
import { errorFrom } from './protocol.js';
import type { ListenerKind, WorkerListenerOptions, WorkerStart, WorkerToMain } from './protocol.js';
import { bookOf, formatWorkerMetrics } from './worker_book.js';
import { workerCredentialsAfter } from './worker_credentials.js';
import { fromCloneable, subscribedChannels, SUBSCRIBER_POLL_MS } from './diagnostics_relay.js';
import type { ForwardedChannel } from './diagnostics_relay.js';
import type { CredentialUpdate } from '../tls/credential_swap.js';
import type { WorkerStats } from './worker_book.js';

export type { WorkerStats } from './worker_book.js';

export interface WorkersListenerStats extends ListenerStats {
  workers: WorkerStats[];
  /** Client and handler errors the workers counted but did not forward (the flood bound). */
  eventsSuppressed: number;
}

/** What a `worker` event says: a worker took its slot, or a worker ended (and is replaced). */
export type WorkerEvent =
  | { type: 'online'; id: number; threadId: number }
  | { type: 'exit'; id: number; threadId: number; exitCode: number; error?: Error; restartInMs: number | null };

const DEFAULT_BACKLOG = 1024;
const TICKET_KEYS_BYTES = 48;

export class WorkersListener extends EventEmitter implements SlotHost {
  readonly backend = 'native' as const;
  private readonly binding: DispatchBinding;
  private readonly workers: ResolvedWorkersOptions;
  private readonly acceptorOptions: AcceptorOptions;
  private slots: WorkerSlot[] = [];
  private dispatcher: NativeDispatcher | null = null;
  private readonly life = new ListenerLife(this);
  private listenAddress: net.AddressInfo | null = null;
  private ticketKeys: Buffer = crypto.randomBytes(TICKET_KEYS_BYTES);
  private eventsSuppressed = 0;
  private ticketKeysSeq = 0;
  private credentialsSeq = 0;
  private auditSeq = 0;
  /** The diagnostics channels the workers were last told to forward (see diagnostics_relay.ts). */
  private forwardedChannels: ForwardedChannel[] = [];
  private subscriberPoll: NodeJS.Timeout | null = null;

  constructor(
    private readonly kind: ListenerKind,
    /** Listening, plus the admission limits the accept thread applies to the listener as a whole. */
    private readonly options: BaseListenerOptions & { maxPendingHandshakes?: number },
    private workerOptions: WorkerListenerOptions,
    workers: WorkersOptions,
    acceptorOptions?: AcceptorOptions,
  ) {
    super();
    validateBaseOptions(options);
    this.workers = resolveWorkersOptions(workers);
    this.acceptorOptions = validateAcceptorOptions(acceptorOptions);
    if (options.backend === 'js') {
      throw codedError(ErrorCodes.NATIVE_REQUIRED, "workers need the native acceptor (its accept thread); backend 'js' cannot serve them");
    }
    const binding = dispatchBindingOf(loadNativeBinding().binding);
    if (!binding) {
      throw codedError(ErrorCodes.NATIVE_REQUIRED, 'workers need the native acceptor (its accept thread), which is not available here');
    }
    this.binding = binding;
    this.slots = this.newSlots();
  }

  private newSlots(): WorkerSlot[] {
    return Array.from({ length: this.workers.count }, (_, id) => new WorkerSlot(id, this));
  }

  /**
   * Binds, starts the workers and the accept thread; resolves once every worker takes
   * connections. A failure leaves nothing bound and no worker running, and the listener new:
   * listen() may be called again (listener_life.ts).
   */
  listen(): Promise<net.AddressInfo> {
    return this.life.listen({
      open: () => this.open(),
      undo: async () => {
        // The accept thread (and with it the listening descriptor) first: nothing is accepted
        // for workers that are going away. A close() under way closes the workers itself.
        this.dispatcher?.close();
        if (this.subscriberPoll) clearInterval(this.subscriberPoll);
        if (this.life.stopping) return;
        await Promise.all(this.slots.map((slot) => slot.close(0)));
        this.dispatcher = null;
        this.listenAddress = null;
        this.slots = this.newSlots();
      },
    });
  }

  private async open(): Promise<net.AddressInfo> {
    const backlog = this.options.backlog ?? DEFAULT_BACKLOG;
    let fd: number;
    let opened = false;
    if (this.options.fd !== undefined) {
      const outcome = this.binding.prepareAdoptedSocket(this.options.fd);
      if ('errno' in outcome) throw adoptionError(this.options.fd, outcome);
      fd = outcome.fd;
    } else {
      const address = await resolveListenAddress(this.options.host, this.options.port ?? 0, this.binding);
      const outcome = this.binding.openListenSocket(address.family, address.address, address.port, backlog);
      if ('errno' in outcome) throw systemError(outcome.errno, outcome.syscall, { address: address.address, port: address.port });
      fd = outcome.fd;
      opened = true;
    }
    try {
      this.applyDeferAccept(fd);
      const { maxConnections, maxPendingHandshakes, maxConnectionsPerAddress, perAddressIPv6Prefix, maxQueuedConnections, proxyProtocol } = this.options;
      const limits = {
        ...(maxConnections !== undefined ? { maxConnections } : {}),
        ...(maxPendingHandshakes !== undefined ? { maxPendingHandshakes } : {}),
        ...(maxQueuedConnections !== undefined ? { maxQueuedConnections } : {}),
        // Behind a PROXY balancer the peer is the balancer: the workers count each header's client.
        ...(maxConnectionsPerAddress !== undefined ? { maxConnectionsPerAddress, perAddressFromHeader: proxyProtocol !== undefined } : {}),
        ...(perAddressIPv6Prefix !== undefined ? { perAddressIPv6Prefix } : {}),
      };
      this.dispatcher = new this.binding.Dispatcher(fd, (kind, errno, delayMs) => this.onAcceptEvent(kind, errno, delayMs), {
        ...this.acceptorOptions,
        ...limits,
      });
    } catch (error) {
      if (opened) fs.closeSync(fd);
      throw error;
    }
    // From here the listening descriptor is the dispatcher's.
    this.dispatcher.start();
    const address = this.dispatcher.address();
    if (!address) throw new Error('listening socket has no address');
    this.listenAddress = address;
    if (this.life.state !== 'opening') throw codedError(ErrorCodes.LISTENER_CLOSED, 'the listener was closed while opening');
    this.forwardedChannels = subscribedChannels();
    this.subscriberPoll = setInterval(() => this.pollSubscribers(), SUBSCRIBER_POLL_MS);
    this.subscriberPoll.unref();
    await Promise.all(this.slots.map((slot) => slot.start()));
    return address;
  }

  /**
   * TCP_DEFER_ACCEPT on the socket the accept thread polls, as the single-thread acceptor sets
   * it: a silent connection stays in the kernel. Without the option (not Linux) it does nothing.
   */
  private applyDeferAccept(fd: number): void {
    const seconds = this.options.deferAccept ?? 0;
    if (seconds === 0) return;
    const errno = this.binding.setDeferAccept(fd, seconds);
    if (errno !== 0 && errnoName(errno) !== 'ENOPROTOOPT') throw systemError(errno, 'setsockopt');
  }

  address(): net.AddressInfo | null {
    return this.life.isListening ? this.listenAddress : null;
  }

  /** The books of every worker, as one listener's, plus each worker's own. */
  stats(): WorkersListenerStats {
    const native = this.dispatcher?.stats();
    return bookOf(native, this.slots, this.eventsSuppressed, this.kind === 'tls');
  }

  /** The statistics in the Prometheus text format, totals and then one sample per worker (label `worker`). */
  metrics(labels: Readonly<Record<string, string>> = {}): string {
    const stats = this.stats();
    return formatPrometheus(stats, labels) + formatWorkerMetrics(stats.workers, labels);
  }

  /**
   * New session ticket keys (48 bytes; random when omitted) for every worker's contexts;
   * resolves once every running worker uses them. Node's contexts hold one key: tickets issued
   * before the rotation no longer resume (those clients do one full handshake).
   */
  async rotateTicketKeys(keys: Buffer = crypto.randomBytes(TICKET_KEYS_BYTES)): Promise<void> {
    if (!Buffer.isBuffer(keys) || keys.length !== TICKET_KEYS_BYTES) {
      throw codedError(ErrorCodes.INVALID_OPTION, `ticket keys must be a Buffer of ${TICKET_KEYS_BYTES} bytes`);
    }
    if (this.kind !== 'tls') throw codedError(ErrorCodes.INVALID_OPTION, 'a plain-TCP listener has no ticket keys');
    this.ticketKeys = Buffer.from(keys);
    const seq = ++this.ticketKeysSeq;
    await Promise.all(this.slots.map((slot) => slot.setTicketKeys(new Uint8Array(this.ticketKeys), seq)));
  }

  /**
   * Serves connections with new credentials (PEM { key, cert }; what is absent stays) on every
   * worker, and on every worker started later. Checked and built here first: a bad credential
   * throws at once (ERR_INVALID_CREDENTIAL, ERR_INVALID_OPTION) and nothing changes. Resolves
   * once every running worker serves new connections with them; handshakes under way finish
   * with the old ones.
   */
  setCredentials(update: CredentialUpdate): Promise<void> {
    if (this.kind !== 'tls') throw codedError(ErrorCodes.INVALID_OPTION, 'a plain-TCP listener has no credentials');
    const { options, changed } = workerCredentialsAfter(this.workerOptions, update);
    this.workerOptions = options;
    const seq = ++this.credentialsSeq;
    return Promise.all(this.slots.map((slot) => slot.setCredentials({ type: 'credentials', ...changed, seq }))).then(() => undefined);
  }

  /**
   * Cross-checks every worker's registry with the process's descriptors (the threads share
   * one descriptor table): tracked connections whose descriptor is gone, and (on Linux) open
   * connections on this port that no worker tracks. Asynchronous: each worker is asked for its
   * list. A connection in hand-off at that moment (accepted, not yet taken by its worker) is
   * not tracked by anyone yet: on a busy listener, look twice before calling one a leak.
   */
  async audit(): Promise<AuditReport> {
    const seq = ++this.auditSeq;
    const lists = await Promise.all(this.slots.map((slot) => slot.trackedDescriptors(seq)));
    return auditDescriptors(lists.flat(), this.listenAddress?.port ?? null);
  }

  ref(): this {
    this.dispatcher?.ref();
    for (const slot of this.slots) slot.ref();
    return this;
  }

  unref(): this {
    this.dispatcher?.unref();
    for (const slot of this.slots) slot.unref();
    return this;
  }

  /**
   * Stops accepting at once (the port is free when this returns), closes every worker's
   * connections (ended gracefully first with `gracefulTimeout`) and resolves once every worker
   * thread has exited, so every descriptor is released.
   */
  close(options: CloseOptions = {}): Promise<void> {
    return this.life.close(
      options,
      async ({ gracefulTimeout }, opening) => {
        this.dispatcher?.close();
        if (this.subscriberPoll) clearInterval(this.subscriberPoll);
        await Promise.all(this.slots.map((slot) => slot.close(gracefulTimeout)));
        // An attempt to open that outlived the above closes what it opened itself (its undo).
        await opening;
      },
      () => {
        const stats = this.stats();
        debug('closed: %j', stats);
        if (channels.listenerClose.hasSubscribers) channels.listenerClose.publish({ listener: this, stats });
      },
    );
  }

  // ---- the accept thread's events ----------------------------------------------------------

  private onAcceptEvent(kind: AcceptEventKind, errno: number, delayMs: number): void {
    const error = systemError(errno, 'accept');
    if (kind === AcceptEventKind.Retry) {
      if (channels.acceptRetry.hasSubscribers) channels.acceptRetry.publish({ listener: this, error });
      this.emit('acceptRetry', error);
    } else if (kind === AcceptEventKind.Pause) {
      if (channels.acceptPause.hasSubscribers) channels.acceptPause.publish({ listener: this, error, delayMs });
      this.emit('acceptPaused', error, delayMs);
    } else {
      debug('accept failed with %s; closing', errnoName(errno));
      void this.close();
      this.emit('error', error);
    }
  }

  // ---- SlotHost: what the worker slots report ------------------------------------------------

  startConfig(slot: WorkerSlot): { start: WorkerStart; options: WorkerOptions } {
    const { count: _count, moduleUrl, workerData, ...passThrough } = this.workers;
    return {
      start: {
        kind: this.kind,
        dispatcherId: this.dispatcher?.id ?? 0,
        slot: slot.id,
        address: this.listenAddress ?? { address: '', family: '', port: 0 },
        moduleUrl,
        options: this.workerOptions,
        ...(this.kind === 'tls' ? { ticketKeys: new Uint8Array(this.ticketKeys) } : {}),
        setupBook: slot.setupBook.buffer,
        userData: workerData,
      },
      options: { ...passThrough, workerData },
    };
  }

  private pollSubscribers(): void {
    const now = subscribedChannels();
    if (now.join() === this.forwardedChannels.join()) return;
    this.forwardedChannels = now;
    for (const slot of this.slots) slot.notify({ type: 'diagnostics', channels: now });
  }

  online(slot: WorkerSlot, threadId: number): void {
    slot.notify({ type: 'diagnostics', channels: this.forwardedChannels });
    this.emit('worker', { type: 'online', id: slot.id, threadId } satisfies WorkerEvent);
  }

  exited(slot: WorkerSlot, info: { threadId: number; exitCode: number; error?: Error; restartInMs: number | null }): void {
    this.emit('worker', { type: 'exit', id: slot.id, ...info } satisfies WorkerEvent);
  }

  message(slot: WorkerSlot, message: WorkerToMain): void {
    if (message.type === 'event') {
      this.emit(message.name, errorFrom(message.error), { ...message.info, worker: slot.id });
    } else if (message.type === 'diagnostic') {
      const channel = channels[message.channel];
      if (channel.hasSubscribers) channel.publish({ ...fromCloneable(message.message), listener: this, worker: slot.id });
    } else if (message.type === 'suppressed') {
      this.eventsSuppressed += message.count;
    }
  }
}
