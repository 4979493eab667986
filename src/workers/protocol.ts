// What the main thread and its worker threads say to each other (postMessage), and what a
// worker is started with (workerData).
import type { ServerCredential } from '../tls/credentials.js';
import type { ProxyProtocolMode } from '../proxy/proxy_header_accumulator.js';
import type { CloneableMessage, ForwardedChannel } from './diagnostics_relay.js';

export type ListenerKind = 'tls' | 'tcp';

/** The listener options a worker rebuilds its listener from: everything cloneable. */
export interface WorkerListenerOptions {
  gracefulCloseTimeout?: number;
  idleTimeout?: number;
  // TLS only
  credential?: ServerCredential;
  sniCredential?: ServerCredential;
  alpn?: string[];
  requestClientCert?: boolean;
  handshakeTimeout?: number;
  logTLSErrors?: boolean;
  // Both kinds: the PROXY protocol stage runs in the workers.
  proxyProtocol?: ProxyProtocolMode;
  trustedProxies?: string[];
  /** With proxyProtocol only: the header's client is limited in the worker, in the listener-wide table. */
  maxConnectionsPerAddress?: number;
  perAddressIPv6Prefix?: number;
}

export interface WorkerStart {
  kind: ListenerKind;
  dispatcherId: number;
  slot: number;
  /** The main thread's listening address (what address() reports in the worker). */
  address: { address: string; family: string; port: number };
  moduleUrl: string;
  options: WorkerListenerOptions;
  /** 48 bytes shared by every worker's contexts, so sessions resume on any worker. */
  ticketKeys?: Uint8Array;
  /** The slot's setup book (setup_book.ts): shared, not copied; each worker of the slot adds to it. */
  setupBook: SharedArrayBuffer;
  /** The user's workerData, for the handler module. */
  userData: unknown;
}

/** An error as it crosses threads: message and code (a stack from another thread says little). */
export interface ErrorReport {
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
}

export type WorkerToMain =
  | { type: 'ready' }
  | { type: 'failed'; error: ErrorReport }
  | { type: 'event'; name: 'tlsClientError' | 'connectionError'; error: ErrorReport; info: Record<string, unknown> }
  | { type: 'suppressed'; count: number }
  | { type: 'closed' }
  | { type: 'ticketKeysSet'; seq: number }
  | { type: 'credentialsSet'; seq: number; error?: ErrorReport }
  | { type: 'diagnostic'; channel: ForwardedChannel; message: CloneableMessage }
  | { type: 'tracked'; seq: number; descriptors: Array<{ id: number; fd: number | null }> };

/** New credentials for a running worker (listener.setCredentials); what is absent stays. */
export interface CredentialsMessage {
  type: 'credentials';
  credential?: ServerCredential;
  sniCredential?: ServerCredential;
  seq: number;
}

export type MainToWorker =
  | { type: 'close'; gracefulTimeout?: number }
  | { type: 'ticketKeys'; keys: Uint8Array; seq: number }
  | CredentialsMessage
  /** The diagnostics channels the main thread's subscribers listen on now. */
  | { type: 'diagnostics'; channels: ForwardedChannel[] }
  /** Which descriptors the worker's registry tracks now (for audit()). */
  | { type: 'tracked'; seq: number };

export function reportOf(error: unknown): ErrorReport {
  const e = error as Partial<ErrorReport> | null;
  return {
    message: error instanceof Error ? error.message : String(error),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
    ...(typeof e?.errno === 'number' ? { errno: e.errno } : {}),
    ...(typeof e?.syscall === 'string' ? { syscall: e.syscall } : {}),
  };
}

export function errorFrom(report: ErrorReport): Error {
  return Object.assign(new Error(report.message), report);
}
