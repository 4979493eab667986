// One book for a listener served by workers, from what the accept thread counted (accepted,
// dispatched per worker, closed by a queue) and what each worker published (its registry):
//   accepted = the accept thread's count
//   closed   = Σ (worker's closed + closed by its queues) + dropped (no worker ever took them)
//   active   = Σ (worker's active + queued for it or being handed to it) + stranded (waiting
//              in the accept thread for a worker)
//   leaked   = accepted - closed - active, 0 unless a descriptor was lost somewhere.
// The addon reads all of it under one lock, so the picture is consistent at any moment.
// Setup failures by code and handshake times come from each slot's setup book instead
// (setup_book.ts), read here too, and merged the way one registry would have counted them.
import { emptyDurations, mergeDurations } from '../duration_histogram.js';
import type { DurationHistogramSnapshot } from '../duration_histogram.js';
import { errnoName } from '../errors.js';
import type { ListenerStats } from '../listener.js';
import type { DispatcherStats, DispatchSlotStats } from './dispatch_binding.js';
import type { SetupBookSnapshot } from './setup_book.js';

export interface WorkerStats {
  id: number;
  /** The thread serving the slot now; null between a worker's death and its replacement. */
  threadId: number | null;
  /** Workers started for this slot (1 + replacements). */
  starts: number;
  accepted: number;
  closed: number;
  active: number;
  queued: number;
  handshakes: ListenerStats['handshakes'];
  /** This slot's failed and timed-out setups by code, every worker of the slot included. */
  setupFailures: Record<string, number>;
  /** How long this slot's completed setups took (the listener's buckets). */
  handshakeTime: DurationHistogramSnapshot;
  handlerErrors: number;
}

interface SlotView {
  readonly id: number;
  readonly threadId: number | null;
  readonly starts: number;
  readonly setupBook: { read(): SetupBookSnapshot };
}

const emptySlot: DispatchSlotStats = {
  dispatched: 0,
  closedByQueue: 0,
  queued: 0,
  taking: false,
  published: {
    active: 0,
    closed: 0,
    handshakesCompleted: 0,
    handshakesFailed: 0,
    handshakesTimedOut: 0,
    handshakesAborted: 0,
    sniCredential: 0,
    primaryCredential: 0,
    handlerErrors: 0,
    idleTimeouts: 0,
    inSetup: 0,
    proxyInvalid: 0,
    proxyUntrusted: 0,
    proxyHealthChecks: 0,
    rejectedPerAddress: 0,
    rejectedAddressTableFull: 0,
  },
};

export function bookOf(
  native: DispatcherStats | undefined,
  slots: readonly SlotView[],
  eventsSuppressed: number,
  countsHandshakes: boolean,
): ListenerStats & { workers: WorkerStats[]; eventsSuppressed: number } {
  const workers: WorkerStats[] = [];
  const total: ListenerStats = {
    accepted: native?.accepted ?? 0,
    closed: native?.dropped ?? 0,
    active: native?.stranded ?? 0,
    // Waiting in the accept thread for a worker, or queued for one: taken on and not yet set up.
    inSetup: native?.stranded ?? 0,
    leaked: 0,
    handshakes: { completed: 0, failed: 0, timedOut: 0, aborted: 0 },
    setupFailures: {},
    handshakeTime: emptyDurations(),
    acceptRetries: {},
    acceptPauses: native?.pauses ?? 0,
    sni: { sniCredential: 0, primaryCredential: 0 },
    handlerErrors: 0,
    idleTimeouts: 0,
    // The accept thread pauses at maxConnections/maxPendingHandshakes without saying which,
    // or for how long.
    proxyProtocol: { invalid: 0, untrusted: 0, healthChecks: 0 },
    admission: {
      pausedFor: null,
      pausedMs: 0,
      pauses: native?.admissionPauses ?? 0,
      backlog: null,
      // Present only with maxQueuedConnections, as on one thread.
      ...(native?.sheddingCpuMs !== undefined ? { sheddingCpuMs: native.sheddingCpuMs } : {}),
    },
    // Closed by the accept thread at accept, plus (with proxyProtocol) by workers after the header;
    // reset by the accept thread from the kernel's queue while paused (maxQueuedConnections).
    rejected: {
      maxConnections: 0,
      maxPendingHandshakes: 0,
      maxConnectionsPerAddress: native?.rejectedPerAddress ?? 0,
      addressTableFull: native?.rejectedAddressTableFull ?? 0,
      maxQueuedConnections: native?.rejectedQueued ?? 0,
    },
  };
  for (const [errno, count] of Object.entries(native?.retriesByErrno ?? {})) total.acceptRetries[errnoName(Number(errno))] = count;
  for (const slot of slots) {
    const s = native?.slots[String(slot.id)] ?? emptySlot;
    const p = s.published;
    // A descriptor a queue closed itself (the worker closing or dying before it took it) was
    // accepted and never set up: on a TLS listener a handshake cut short, as close() counts
    // one on a single thread.
    const aborted = p.handshakesAborted + (countsHandshakes ? s.closedByQueue : 0);
    const handshakes = { completed: p.handshakesCompleted, failed: p.handshakesFailed, timedOut: p.handshakesTimedOut, aborted };
    const { setupFailures, handshakeTime } = slot.setupBook.read();
    const worker: WorkerStats = {
      id: slot.id,
      threadId: slot.threadId,
      starts: slot.starts,
      accepted: s.dispatched,
      closed: p.closed + s.closedByQueue,
      active: p.active + s.queued,
      queued: s.queued,
      handshakes,
      setupFailures,
      handshakeTime,
      handlerErrors: p.handlerErrors,
    };
    workers.push(worker);
    total.closed += worker.closed;
    total.active += worker.active;
    total.inSetup += p.inSetup + s.queued;
    total.handshakes.completed += handshakes.completed;
    total.handshakes.failed += handshakes.failed;
    total.handshakes.timedOut += handshakes.timedOut;
    total.handshakes.aborted += handshakes.aborted;
    for (const [code, count] of Object.entries(setupFailures)) total.setupFailures![code] = (total.setupFailures![code] ?? 0) + count;
    mergeDurations(total.handshakeTime!, handshakeTime);
    total.sni.sniCredential += p.sniCredential;
    total.sni.primaryCredential += p.primaryCredential;
    total.handlerErrors += p.handlerErrors;
    total.idleTimeouts += p.idleTimeouts;
    total.proxyProtocol.invalid += p.proxyInvalid;
    total.proxyProtocol.untrusted += p.proxyUntrusted;
    total.proxyProtocol.healthChecks += p.proxyHealthChecks;
    total.rejected.maxConnectionsPerAddress += p.rejectedPerAddress;
    total.rejected.addressTableFull += p.rejectedAddressTableFull;
  }
  total.leaked = total.accepted - total.closed - total.active;
  return { ...total, workers, eventsSuppressed };
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Per-worker families (label `worker`), appended to formatPrometheus()'s totals. */
export function formatWorkerMetrics(workers: readonly WorkerStats[], labels: Readonly<Record<string, string>>): string {
  const constant = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}",`).join('');
  const lines: string[] = [];
  const family = (name: string, type: 'counter' | 'gauge', help: string, value: (w: WorkerStats) => number): void => {
    lines.push(`# HELP native_tls_listener_${name} ${help}`, `# TYPE native_tls_listener_${name} ${type}`);
    for (const w of workers) lines.push(`native_tls_listener_${name}{${constant}worker="${w.id}"} ${value(w)}`);
  };
  family('worker_connections_accepted_total', 'counter', 'Connections the accept thread handed to this worker.', (w) => w.accepted);
  family('worker_connections_closed_total', 'counter', "Connections of this worker whose descriptor has been released.", (w) => w.closed);
  family('worker_connections_active', 'gauge', 'Connections this worker holds or has queued.', (w) => w.active);
  return lines.join('\n') + '\n';
}
