// Admission control: how many connections the listener takes on at once. The limits are
// enforced where connections are accepted (native: in C++, before each accept(), so a
// connection that is not admitted costs no JS; js: in net.Server's connection callback),
// against counters JS and the addon share in one Int32Array:
//   [0] active, [1] handshaking, [2] paused reasons
// (native/admission.h has the same layout). The accepting side counts a connection in; the
// registry counts it out when it is released, with one or two typed-array decrements, and
// calls into C++ only when the shared word says accepting is paused, or to count out the
// connection's address (maxConnectionsPerAddress: the acceptor's table, native/address_counts.h).
import { checkInteger } from '../validation.js';
import { codedError, ErrorCodes } from '../errors.js';
import type { NativeAdmissionOptions } from '../native/binding.js';
import { AddressCounts, addressTableCapacity } from './address_counts.js';
import type { AddressRejection } from './address_counts.js';
import { DEFAULT_IPV6_PREFIX, perAddressKey } from './address_key.js';

const ACTIVE = 0;
const HANDSHAKING = 1;
const PAUSED = 2;
const COUNTERS = 3;

/** The largest limit: the counters are 32-bit. */
export const ADMISSION_LIMIT_MAX = 2 ** 31 - 1;
/** TCP_DEFER_ACCEPT seconds at most (the kernel rounds to SYN-ACK retransmissions anyway). */
export const DEFER_ACCEPT_MAX_SECONDS = 3600;

export interface AdmissionOptions {
  maxConnections?: number;
  maxPendingHandshakes?: number;
  maxConnectionsPerAddress?: number;
  /** The bits of an IPv6 peer that make its per-address key (src/accept/address_key.ts). */
  perAddressIPv6Prefix?: number;
  maxQueuedConnections?: number;
  deferAccept?: number;
}

export type AdmissionReason = 'maxConnections' | 'maxPendingHandshakes';
export type RejectionReason = AdmissionReason | AddressRejection | 'maxQueuedConnections';

/** Throws ERR_INVALID_OPTION unless each limit is absent or an integer in its range. */
export function validateAdmissionOptions(options: AdmissionOptions): void {
  checkInteger('maxConnections', options.maxConnections, 1, ADMISSION_LIMIT_MAX);
  checkInteger('maxPendingHandshakes', options.maxPendingHandshakes, 1, ADMISSION_LIMIT_MAX);
  checkInteger('maxConnectionsPerAddress', options.maxConnectionsPerAddress, 1, ADMISSION_LIMIT_MAX);
  checkInteger('perAddressIPv6Prefix', options.perAddressIPv6Prefix, 1, 128);
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
  /** how to count it out of a JS per-address table (js backend, PROXY stage), if counted in one */
  addressRelease?: (() => void) | undefined;
}

export class AdmissionCounters {
  readonly shared: Int32Array;
  readonly countsHandshakes: boolean;
  /** Per-address counts of the js backend (the native acceptor has its own table). */
  private readonly jsAddresses: AddressCounts | null;
  /** The native acceptor's way to count a released connection's address out (its slot). */
  releaseAddress: ((slot: number) => void) | null = null;
  readonly rejected: Record<RejectionReason, number> = {
    maxConnections: 0,
    maxPendingHandshakes: 0,
    maxConnectionsPerAddress: 0,
    addressTableFull: 0,
    maxQueuedConnections: 0,
  };

  constructor(
    readonly limits: AdmissionOptions,
    /** The js backend's table size (acceptorOptions.addressTableSize, validated); default by maxConnections. */
    addressTableSize?: number,
  ) {
    this.countsHandshakes = limits.maxPendingHandshakes !== undefined;
    const perAddress = limits.maxConnectionsPerAddress;
    const capacity = addressTableSize ?? addressTableCapacity(limits.maxConnections);
    this.jsAddresses = perAddress !== undefined ? new AddressCounts(perAddress, capacity) : null;
    // Its own ArrayBuffer: always off V8's heap, so the address C++ holds never moves.
    this.shared = new Int32Array(new ArrayBuffer(COUNTERS * Int32Array.BYTES_PER_ELEMENT));
  }

  /** What the addon is given (NativeAdmissionOptions). */
  nativeOptions(): NativeAdmissionOptions {
    const { maxConnections, maxPendingHandshakes, maxConnectionsPerAddress, perAddressIPv6Prefix, maxQueuedConnections } = this.limits;
    return {
      admissionCounters: this.shared,
      countsHandshakes: this.countsHandshakes,
      ...(maxConnections !== undefined ? { maxConnections } : {}),
      ...(maxPendingHandshakes !== undefined ? { maxPendingHandshakes } : {}),
      ...(maxConnectionsPerAddress !== undefined ? { maxConnectionsPerAddress } : {}),
      ...(perAddressIPv6Prefix !== undefined ? { perAddressIPv6Prefix } : {}),
      ...(maxQueuedConnections !== undefined ? { maxQueuedConnections } : {}),
    };
  }

  /**
   * The js backend's accept: counts the connection in, or names the limit it is over (the
   * socket is then to be destroyed). net.Server cannot leave clients in the backlog.
   * `counted` gets how to count it out of its address, when it was counted in one.
   */
  admitJs(peerAddress: () => string | undefined, counted: (release: () => void) => void): RejectionReason | null {
    const { maxConnections, maxPendingHandshakes, perAddressIPv6Prefix } = this.limits;
    const shared = this.shared;
    let reason: RejectionReason | null = null;
    if (maxConnections !== undefined && (shared[ACTIVE] ?? 0) >= maxConnections) reason = 'maxConnections';
    else if (maxPendingHandshakes !== undefined && (shared[HANDSHAKING] ?? 0) >= maxPendingHandshakes) reason = 'maxPendingHandshakes';
    else if (this.jsAddresses !== null) {
      const key = perAddressKey(peerAddress(), perAddressIPv6Prefix ?? DEFAULT_IPV6_PREFIX);
      const admitted = key === null ? null : this.jsAddresses.admit(key);
      if (typeof admitted === 'string') reason = admitted;
      else if (admitted !== null) counted(admitted);
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
    if (slot >= 0) {
      // Once: a slot given back twice would count out another connection of that address.
      connection.addressSlot = -1;
      this.releaseAddress?.(slot);
    }
    const release = connection.addressRelease;
    if (release !== undefined) {
      connection.addressRelease = undefined;
      release();
    }
    return shared[PAUSED] !== 0;
  }
}

