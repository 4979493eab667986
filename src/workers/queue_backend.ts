// A worker thread's accept backend: not a listening socket but its queue on the main thread's
// accept thread (native/worker_queue.h). Each batch goes through the same hand-off as the
// native backend's (src/accept/descriptor_handoff.ts, via the sink), so the slot protocol and
// descriptor ownership are the same; the listening socket is the main thread's, never here.
import type net from 'node:net';
import type { AcceptBackend, AcceptCounters, AcceptSink } from '../accept/backend.js';
import type { DispatchBinding, NativeWorkerQueue } from './dispatch_binding.js';

export interface QueueTarget {
  dispatcherId: number;
  slot: number;
  /** The main thread's listening address, for address(). */
  address: net.AddressInfo;
}

export class QueueAcceptBackend implements AcceptBackend {
  readonly kind = 'native' as const;
  private queue: NativeWorkerQueue | null = null;
  private accepted = 0;
  private closed = false;

  constructor(
    private readonly binding: DispatchBinding,
    private readonly target: QueueTarget,
    private readonly sink: AcceptSink,
    /** After each batch (the books are published then). */
    private readonly afterBatch: () => void,
  ) {}

  open(): Promise<net.AddressInfo> {
    if (this.closed) return Promise.reject(new Error('closed before opening'));
    try {
      this.queue = new this.binding.WorkerQueue(this.target.dispatcherId, this.target.slot, (fds, addressSlots) => {
        this.accepted += fds.length;
        try {
          // The slots the accept thread counted each peer in (maxConnectionsPerAddress): the
          // registry gives each back through releaseAddress() when it releases the connection.
          this.sink.onDescriptors(fds, fds.length, addressSlots);
        } finally {
          this.afterBatch();
        }
      });
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve(this.target.address);
  }

  address(): net.AddressInfo | null {
    return this.queue && !this.closed ? this.target.address : null;
  }

  /** The listening socket is the main thread's accept thread's, never a worker's. */
  listeningDescriptor(): null {
    return null;
  }

  counters(): AcceptCounters {
    // Retries and pauses happen on the accept thread; the main thread reports them.
    return {
      accepted: this.accepted,
      pauses: 0,
      retriesByErrno: {},
      admission: { pausedFor: null, pausedMs: 0, pauses: 0, backlog: null },
      rejected: { maxConnections: 0, maxPendingHandshakes: 0, maxConnectionsPerAddress: 0, addressTableFull: 0, maxQueuedConnections: 0 },
    };
  }

  /** A released connection's per-address slot: counted out for the listener as a whole. */
  releaseAddress(slot: number): void {
    this.queue?.releaseAddress(slot);
  }

  /** With proxyProtocol: counts the header's client for the listener as a whole (see NativeWorkerQueue). */
  admitClient(address: string): number {
    return this.queue ? this.queue.admitClient(address) : -1;
  }

  /** The accept thread applies the admission limits before a worker sees a connection: nothing to resume. */
  resume(): void {}

  /** Takes nothing more; descriptors still queued for this worker are closed and counted. */
  close(): void {
    this.closed = true;
    // What it closed unserved is in the queue's closedByQueue, which the main thread's book
    // counts (as aborted handshakes on a TLS listener).
    this.queue?.close();
  }

  /** The publisher of this worker's books (after close() too). */
  publish(counters: Float64Array): void {
    this.queue?.publish(counters);
  }

  ref(): void {
    this.queue?.ref();
  }

  unref(): void {
    this.queue?.unref();
  }
}
