// The seam between "something accepts connections" and the listener that serves them.
// Two implementations: the native acceptor (native_backend.ts) and net.Server (js_backend.ts).
import type net from 'node:net';
import type { ResolvedAddress } from '../native/binding.js';
import type { BatchPeers } from './peer_address.js';
import type { SystemError } from '../errors.js';
import type { AdmissionReason, RejectionReason } from './admission.js';

export type BackendKind = 'native' | 'js';

export type ListenTarget =
  | { kind: 'address'; address: ResolvedAddress; backlog: number }
  | { kind: 'fd'; fd: number; backlog: number };

export interface AcceptSink {
  /**
   * Native backend: a batch of accepted descriptors, the first `count` slots of `fds` (an
   * array the acceptor reuses for every batch: nothing may keep it). The sink takes a descriptor by writing
   * -1 into its slot; what it leaves is closed by the acceptor when this returns (the other
   * slot states are listed at BatchCallback in src/native/binding.ts).
   */
  /**
   * A batch: `fds[0..count)` (the array is reused for every batch), each one's per-address slot
   * (absent when no per-address limit is set) and, where asked for, the peers accept() gave.
   */
  onDescriptors(fds: Int32Array, count: number, addressSlots?: Int32Array, peers?: BatchPeers): void;
  /**
   * JS backend: a connection already wrapped by net.Server; `releaseAddress` gives back its
   * per-address count, once, when the registry releases it.
   */
  onSocket(socket: net.Socket, releaseAddress?: () => void): void;
  onRetry(error: SystemError): void;
  onPause(error: SystemError, delayMs: number): void;
  /** The backend has already closed its listening socket when this is called. */
  onFatal(error: SystemError): void;
  /** Native backend: accepting stopped at an admission limit (true), or resumed (false). */
  onBackpressure(paused: boolean, reason: AdmissionReason): void;
}

export interface AdmissionCountersSnapshot {
  /** why accepting is paused now, or null */
  pausedFor: AdmissionReason | null;
  pausedMs: number;
  pauses: number;
  /** the accept queue's length now (Linux, native backend), else null */
  backlog: number | null;
  /** with maxQueuedConnections (native backend): ms of CPU spent resetting the connections shed */
  sheddingCpuMs?: number;
}

export interface AcceptCounters {
  /** Counted by the accepting side itself, before any JS wrapping can lose a descriptor. */
  accepted: number;
  pauses: number;
  retriesByErrno: Record<string, number>;
  admission: AdmissionCountersSnapshot;
  /** connections closed at accept, by the limit they were over */
  rejected: Record<RejectionReason, number>;
}

export interface AcceptBackend {
  readonly kind: BackendKind;
  /** Binds (or adopts) and starts accepting; resolves with the bound address. */
  open(target: ListenTarget): Promise<net.AddressInfo>;
  address(): net.AddressInfo | null;
  /** The listening socket's descriptor while accepting (still this backend's), else null. */
  listeningDescriptor(): number | null;
  counters(): AcceptCounters;
  /** Closes the listening socket at once (the port is free when this returns); idempotent. */
  close(): void;
  /** A connection was released while accepting is paused (admission.ts said so): resume if it can. */
  resume(): void;
  ref(): void;
  unref(): void;
}
