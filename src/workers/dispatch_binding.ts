// The addon's accept thread and worker queues, typed (native/dispatcher.h, native/worker_queue.h).
// Kept apart from src/native/binding.ts: only listeners with `workers` use them.
import type { AcceptEventCallback, AcceptorOptions, BatchCallback, NativeBinding } from '../native/binding.js';

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
}

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
   * Takes no more descriptors; those still queued are closed and counted. Idempotent. Returns
   * how many it closed that way (accepted, never served by this worker; 0 on later calls).
   */
  close(): number;
  /** The worker's books in PUBLISHED_ORDER. */
  publish(counters: Float64Array): void;
  ref(): void;
  unref(): void;
}

export interface DispatchBinding extends NativeBinding {
  Dispatcher: new (listenFd: number, onEvent: AcceptEventCallback, options: AcceptorOptions & DispatchAdmission) => NativeDispatcher;
  /** Throws (code ERR_LISTENER_CLOSED) when no open dispatcher has this id. */
  WorkerQueue: new (dispatcherId: number, slot: number, onBatch: BatchCallback) => NativeWorkerQueue;
}

/** The binding, when this build of the addon has the accept thread. */
export function dispatchBindingOf(binding: NativeBinding | null): DispatchBinding | null {
  const candidate = binding as Partial<DispatchBinding> | null;
  return typeof candidate?.Dispatcher === 'function' && typeof candidate.WorkerQueue === 'function' ? (binding as DispatchBinding) : null;
}
