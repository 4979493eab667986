// The addon's accept thread and worker queues, typed (native/dispatcher.h, native/worker_queue.h).
// Kept apart from src/native/binding.ts: only listeners with `workers` use them.
import type { AcceptEventCallback, AcceptorOptions, NativeBinding } from '../native/binding.js';

/** A worker's books, as the worker publishes them (native/dispatch_state.h, PublishedCounter). */
export interface PublishedCounters {
  active: number;
  closed: number;
  handshakesCompleted: number;
  handshakesFailed: number;
  handshakesTimedOut: number;
  handshakesAborted: number;
  sniCredential: number;
  primaryCredential: number;
  handlerErrors: number;
  idleTimeouts: number;
  /** Connections still in their setup (what maxPendingHandshakes counts). */
  inSetup: number;
  proxyInvalid: number;
  proxyUntrusted: number;
  proxyHealthChecks: number;
  /** Closed after their PROXY header: the client it names at maxConnectionsPerAddress. */
  rejectedPerAddress: number;
  /** ... or a new client while the per-address table was full. */
  rejectedAddressTableFull: number;
}

/** The order the addon reads a published Float64Array in. */
export const PUBLISHED_ORDER: ReadonlyArray<keyof PublishedCounters> = [
  'active',
  'closed',
  'handshakesCompleted',
  'handshakesFailed',
  'handshakesTimedOut',
  'handshakesAborted',
  'sniCredential',
  'primaryCredential',
  'handlerErrors',
  'idleTimeouts',
  'inSetup',
  'proxyInvalid',
  'proxyUntrusted',
  'rejectedPerAddress',
  'rejectedAddressTableFull',
  'proxyHealthChecks',
];

export interface DispatchSlotStats {
  /** Descriptors the accept thread gave this worker slot (every worker that served it). */
  dispatched: number;
  /** Descriptors the slot's queues closed themselves: queued for a worker that ended or closed, or left untaken in a batch. */
  closedByQueue: number;
  /** Descriptors queued for the worker or being handed to it right now. */
  queued: number;
  /** Whether a worker in this slot takes descriptors now. */
  taking: boolean;
  /** What its workers published; a worker that ended counts its active connections closed. */
  published: PublishedCounters;
}

export interface DispatcherStats {
  accepted: number;
  batches: number;
  pauses: number;
  /** Times the accept thread stopped at maxConnections / maxPendingHandshakes. */
  admissionPauses: number;
  /** Times the accept thread stopped with every worker's queue at its high-water mark (4 batches). */
  queueFullPauses: number;
  /** Closed by the accept thread right after accept(): their peer was at maxConnectionsPerAddress. */
  rejectedPerAddress: number;
  /** ... or from a new address while the per-address table was full. */
  rejectedAddressTableFull: number;
  /** Reset by the accept thread from the kernel's queue beyond maxQueuedConnections while paused at a limit. */
  rejectedQueued: number;
  /** With maxQueuedConnections only: ms of the accept thread's CPU spent resetting them. */
  sheddingCpuMs?: number;
  /** Peer addresses with a connection counted against maxConnectionsPerAddress now. */
  addressesInUse: number;
  /** Accepted, and closed when the listener stopped before any worker could take them. */
  dropped: number;
  /** Accepted while no worker's queue was open: held by the accept thread until one joins. */
  stranded: number;
  /** accept() retry events not queued for the main thread because it was not draining them. */
  eventsDropped: number;
  retriesByErrno: Record<string, number>;
  /** By worker slot id. */
  slots: Record<string, DispatchSlotStats>;
  closed: boolean;
}

/** Limits for the listener as a whole, checked by the accept thread against every worker's books. */
export interface DispatchAdmission {
  maxConnections?: number;
  maxPendingHandshakes?: number;
  /** Per peer address, for the listener as a whole (native/address_counts.h). */
  maxConnectionsPerAddress?: number;
  /** The bits of an IPv6 peer its per-address key keeps (1..128, default 64). */
  perAddressIPv6Prefix?: number;
  /** While paused at maxConnections / maxPendingHandshakes, clients allowed to wait in the kernel's queue. */
  maxQueuedConnections?: number;
  /** With proxyProtocol: the workers count the client each header names, not the accept thread the peer. */
  perAddressFromHeader?: boolean;
}

/** A batch for a worker: its descriptors, and each one's per-address slot when the accept thread counts peers. */
export type QueueBatchCallback = (fds: Int32Array, addressSlots: Int32Array | undefined) => void;

/** What admitClient() says besides a slot (>= 0). */
export const ADDRESS_NOT_COUNTED = -1;
export const ADDRESS_OVER_LIMIT = -2;
export const ADDRESS_TABLE_FULL = -3;

export interface NativeDispatcher {
  /** Process-wide id a WorkerQueue joins by. */
  readonly id: number;
  /** Starts the accept thread; it accepts only while at least one worker queue is open. */
  start(): void;
  /** Stops and joins the accept thread and closes the listening socket; idempotent. */
  close(): void;
  stats(): DispatcherStats;
  address(): { address: string; family: 'IPv4' | 'IPv6'; port: number } | null;
  ref(): void;
  unref(): void;
}

export interface NativeWorkerQueue {
  /**
   * Takes no more descriptors; those still queued are closed and counted (closedByQueue in the
   * dispatcher's stats). Idempotent.
   */
  close(): void;
  /** The worker's books in PUBLISHED_ORDER. */
  publish(counters: Float64Array): void;
  /** A connection counted in this per-address slot was released; false when the queue holds none there. */
  releaseAddress(slot: number): boolean;
  /** With proxyProtocol: counts a header's client listener-wide; its slot, ADDRESS_OVER_LIMIT, ADDRESS_TABLE_FULL or ADDRESS_NOT_COUNTED. */
  admitClient(address: string): number;
  ref(): void;
  unref(): void;
}

export interface DispatchBinding extends NativeBinding {
  Dispatcher: new (listenFd: number, onEvent: AcceptEventCallback, options: AcceptorOptions & DispatchAdmission) => NativeDispatcher;
  /** Throws (code ERR_LISTENER_CLOSED) when no open dispatcher has this id. */
  WorkerQueue: new (dispatcherId: number, slot: number, onBatch: QueueBatchCallback) => NativeWorkerQueue;
}

/** The binding, when this build of the addon has the accept thread. */
export function dispatchBindingOf(binding: NativeBinding | null): DispatchBinding | null {
  const candidate = binding as Partial<DispatchBinding> | null;
  return typeof candidate?.Dispatcher === 'function' && typeof candidate.WorkerQueue === 'function' ? (binding as DispatchBinding) : null;
}
