// Admission control: how many connections the listener takes on at once. The limits are
// enforced where connections are accepted (native: in C++, before each accept(), so a
// connection that is not admitted costs no JS; js: in net.Server's connection callback),
// against counters JS and the addon share in one Int32Array:
//   [0] active, [1] handshaking, [2] paused reasons, [3...] per-address counts
// (native/admission.h has the same layout). The accepting side counts a connection in; the
// registry counts it out when it is released, with one or two typed-array decrements, and
// calls into C++ only when the shared word says accepting is paused.
import { checkInteger } from '../validation.js';
import { codedError, ErrorCodes } from '../errors.js';
import type { NativeAdmissionOptions } from '../native/binding.js';

const ACTIVE = 0;
const HANDSHAKING = 1;
const PAUSED = 2;
const FIRST_ADDRESS_SLOT = 3;

/** The largest limit: the counters are 32-bit. */
export const ADMISSION_LIMIT_MAX = 2 ** 31 - 1;
/** TCP_DEFER_ACCEPT seconds at most (the kernel rounds to SYN-ACK retransmissions anyway). */
export const DEFER_ACCEPT_MAX_SECONDS = 3600;
/** Per-address slots when maxConnections does not bound how many addresses are in use. */
const DEFAULT_ADDRESS_SLOTS = 65_536;

export interface AdmissionOptions {
  maxConnections?: number;
  maxPendingHandshakes?: number;
  maxConnectionsPerAddress?: number;
  maxQueuedConnections?: number;
  deferAccept?: number;
}

export type AdmissionReason = 'maxConnections' | 'maxPendingHandshakes';
export type RejectionReason = AdmissionReason | 'maxConnectionsPerAddress' | 'maxQueuedConnections';

/** Throws ERR_INVALID_OPTION unless each limit is absent or an integer in its range. */
export function validateAdmissionOptions(options: AdmissionOptions): void {
  checkInteger('maxConnections', options.maxConnections, 1, ADMISSION_LIMIT_MAX);
  checkInteger('maxPendingHandshakes', options.maxPendingHandshakes, 1, ADMISSION_LIMIT_MAX);
  checkInteger('maxConnectionsPerAddress', options.maxConnectionsPerAddress, 1, ADMISSION_LIMIT_MAX);
  checkInteger('deferAccept', options.deferAccept, 0, DEFER_ACCEPT_MAX_SECONDS);
  checkInteger('maxQueuedConnections', options.maxQueuedConnections, 0, ADMISSION_LIMIT_MAX);
  // It bounds the queue only while accepting is paused at a limit: without one it never would.
  if (options.maxQueuedConnections !== undefined && options.maxConnections === undefined && options.maxPendingHandshakes === undefined) {
    throw codedError(ErrorCodes.INVALID_OPTION, 'maxQueuedConnections needs maxConnections (or, for TLS, maxPendingHandshakes)', {
      option: 'maxQueuedConnections',
    });
  }
}

/** What the registry needs to count a connection out. */
export interface AdmittedConnection {
  phase: 'setup' | 'handler' | 'closing';
  /** the per-address slot the acceptor counted it in, or -1 */
  addressSlot?: number;
}

/** An IPv4-mapped IPv6 address counts as its IPv4 address. */
export function addressKey(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export class AdmissionCounters {
  readonly shared: Int32Array;
  readonly countsHandshakes: boolean;
  /** Per-address counts of the js backend, which has no slots. */
  private readonly jsAddresses = new Map<string, number>();
  readonly rejected: Record<RejectionReason, number> = { maxConnections: 0, maxPendingHandshakes: 0, maxConnectionsPerAddress: 0, maxQueuedConnections: 0 };

  constructor(readonly limits: AdmissionOptions) {
    this.countsHandshakes = limits.maxPendingHandshakes !== undefined;
    const perAddress = limits.maxConnectionsPerAddress !== undefined;
    const slots = perAddress ? Math.min(limits.maxConnections ?? DEFAULT_ADDRESS_SLOTS, DEFAULT_ADDRESS_SLOTS) : 0;
    // Its own ArrayBuffer: always off V8's heap, so the address C++ holds never moves.
    this.shared = new Int32Array(new ArrayBuffer((FIRST_ADDRESS_SLOT + slots) * Int32Array.BYTES_PER_ELEMENT));
  }

  /** What the addon is given (NativeAdmissionOptions). */
  nativeOptions(): NativeAdmissionOptions {
    const { maxConnections, maxPendingHandshakes, maxConnectionsPerAddress, maxQueuedConnections } = this.limits;
    return {
      admissionCounters: this.shared,
      countsHandshakes: this.countsHandshakes,
      ...(maxConnections !== undefined ? { maxConnections } : {}),
      ...(maxPendingHandshakes !== undefined ? { maxPendingHandshakes } : {}),
      ...(maxConnectionsPerAddress !== undefined ? { maxConnectionsPerAddress } : {}),
      ...(maxQueuedConnections !== undefined ? { maxQueuedConnections } : {}),
    };
  }

  /**
   * The js backend's accept: counts the connection in, or names the limit it is over (the
   * socket is then to be destroyed). net.Server cannot leave clients in the backlog.
   */
  admitJs(peerAddress: () => string | undefined, onClose: (release: () => void) => void): RejectionReason | null {
    const { maxConnections, maxPendingHandshakes, maxConnectionsPerAddress } = this.limits;
    const shared = this.shared;
    let reason: RejectionReason | null = null;
    if (maxConnections !== undefined && (shared[ACTIVE] ?? 0) >= maxConnections) reason = 'maxConnections';
    else if (maxPendingHandshakes !== undefined && (shared[HANDSHAKING] ?? 0) >= maxPendingHandshakes) reason = 'maxPendingHandshakes';
    else if (maxConnectionsPerAddress !== undefined) {
      const remoteAddress = peerAddress();
      const key = remoteAddress !== undefined ? addressKey(remoteAddress) : '';
      const count = this.jsAddresses.get(key) ?? 0;
      if (count >= maxConnectionsPerAddress) reason = 'maxConnectionsPerAddress';
      else {
        this.jsAddresses.set(key, count + 1);
        onClose(() => {
          const left = (this.jsAddresses.get(key) ?? 1) - 1;
          if (left > 0) this.jsAddresses.set(key, left);
          else this.jsAddresses.delete(key);
        });
      }
    }
    if (reason !== null) {
      this.rejected[reason]++;
      return reason;
    }
    shared[ACTIVE] = (shared[ACTIVE] ?? 0) + 1;
    if (this.countsHandshakes) shared[HANDSHAKING] = (shared[HANDSHAKING] ?? 0) + 1;
    return null;
  }

  /** A connection left setup for its handler. True when the acceptor is paused and may resume. */
  setupEnded(): boolean {
    if (!this.countsHandshakes) return false;
    this.shared[HANDSHAKING] = (this.shared[HANDSHAKING] ?? 0) - 1;
    return this.shared[PAUSED] !== 0;
  }

  /** A connection's descriptor was released. True when the acceptor is paused and may resume. */
  released(connection: AdmittedConnection): boolean {
    const shared = this.shared;
    shared[ACTIVE] = (shared[ACTIVE] ?? 0) - 1;
    if (this.countsHandshakes && connection.phase === 'setup') shared[HANDSHAKING] = (shared[HANDSHAKING] ?? 0) - 1;
    const slot = connection.addressSlot ?? -1;
    if (slot >= 0) shared[FIRST_ADDRESS_SLOT + slot] = (shared[FIRST_ADDRESS_SLOT + slot] ?? 0) - 1;
    return shared[PAUSED] !== 0;
  }
}

