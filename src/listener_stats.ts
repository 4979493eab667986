// What stats() reports: the acceptor's counters (accepted, retries, pauses, admission) and the
// registry's books (closed, active, handshakes, ...) in one object. `leaked` comes from the two
// sides together, which is why the acceptor counts accepted connections itself.
import type { AcceptCounters } from './accept/backend.js';
import type { AdmissionReason, RejectionReason } from './accept/admission.js';
import type { DurationHistogramSnapshot } from './duration_histogram.js';
import { errnoName } from './errors.js';
import type { ConnectionRegistry } from './registry.js';

export interface ListenerStats {
  accepted: number;
  closed: number;
  active: number;
  /** Of the active: registered and not yet past their setup (the TLS handshake, a PROXY header). */
  inSetup: number;
  /** accepted - closed - active: connections lost without being closed. Should stay 0. */
  leaked: number;
  /** TLS setups: completed; failed or timed out by the client; aborted by close(). */
  handshakes: { completed: number; failed: number; timedOut: number; aborted: number };
  /**
   * The failed and timed-out setups by their error's code ('ERR_CLIENT_CLOSED': 2), as
   * `tlsClientError` reports them. With workers, every worker's (src/workers/setup_book.ts: a
   * worker slot names 32 codes, and counts any further one under 'other').
   */
  setupFailures?: Record<string, number>;
  /**
   * How long completed setups took, from registration (just after accept) to the handler: log
   * buckets whose counts only grow, so two snapshots give an interval's percentiles. With
   * workers, every worker's buckets added up.
   */
  handshakeTime?: DurationHistogramSnapshot;
  /** accept() retries by errno name ('ECONNABORTED': 3) */
  acceptRetries: Record<string, number>;
  acceptPauses: number;
  sni: { sniCredential: number; primaryCredential: number };
  handlerErrors: number;
  idleTimeouts: number;
  /**
   * Connections closed before TLS for their PROXY protocol header (invalid or missing; untrusted
   * peer), and a trusted proxy's health checks (a header, then a close with no byte after it).
   */
  proxyProtocol: { invalid: number; untrusted: number; healthChecks: number };
  /** Admission control: accepting paused at maxConnections/maxPendingHandshakes (native backend). */
  admission: {
    /** the limit accepting is paused at now, or null */
    pausedFor: AdmissionReason | null;
    /** ms accepting has been paused at a limit, in all */
    pausedMs: number;
    /** times it paused */
    pauses: number;
    /** clients waiting in the listening socket's accept queue now (Linux, native backend), else null */
    backlog: number | null;
    /** with maxQueuedConnections (native backend): ms of CPU spent resetting the connections shed */
    sheddingCpuMs?: number;
  };
  /** Connections closed at accept, before any JS saw them (native), by the limit they were over. */
  rejected: Record<RejectionReason, number>;
}

/** The statistics from the acceptor's counters and the registry's books. */
export function collectStats(accept: AcceptCounters, book: ReturnType<ConnectionRegistry['counters']>): ListenerStats {
  const acceptRetries: Record<string, number> = {};
  for (const [errno, count] of Object.entries(accept.retriesByErrno)) acceptRetries[errnoName(Number(errno))] = count;
  return {
    accepted: accept.accepted,
    closed: book.closed,
    active: book.active,
    inSetup: book.inSetup,
    leaked: accept.accepted - book.closed - book.active,
    handshakes: book.handshakes,
    setupFailures: book.setupFailures,
    handshakeTime: book.handshakeTime,
    acceptRetries,
    acceptPauses: accept.pauses,
    sni: book.sni,
    handlerErrors: book.handlerErrors,
    idleTimeouts: book.idleTimeouts,
    proxyProtocol: book.proxyProtocol,
    admission: { ...accept.admission },
    // Behind a PROXY balancer the per-address limit is enforced after the header (src/proxy/).
    rejected: {
      ...accept.rejected,
      maxConnectionsPerAddress: accept.rejected.maxConnectionsPerAddress + book.rejectedPerAddress,
      addressTableFull: accept.rejected.addressTableFull + book.rejectedAddressTableFull,
    },
  };
}
