// What every listener (TCP and TLS) is configured with, and the checks it passes before a
// listener exists.
import type { BackendKind } from './accept/backend.js';
import type { WorkersOptions } from './workers/worker_options.js';
import { codedError, ErrorCodes } from './errors.js';
import { checkInteger, MAX_TIMER_MS } from './validation.js';
import type { ProxyProtocolOptions } from './proxy/proxy_options.js';
import { validateAdmissionOptions } from './accept/admission.js';

export interface BaseListenerOptions extends ProxyProtocolOptions {
  /** Port number or service name ('https'); 0 picks a free port. */
  port?: number | string;
  /** Address or name to bind; omitted = wildcard (`::` dual-stack where IPv6 exists). */
  host?: string;
  /** An already listening socket to adopt instead of binding; the listener closes it on close(). */
  fd?: number;
  backlog?: number;
  backend?: BackendKind;
  /** ms the peer gets to close after a handler finishes before the socket is destroyed. */
  gracefulCloseTimeout?: number;
  /** ms without traffic after which a connection is closed (off by default). */
  idleTimeout?: number;
  /** Serve connections on worker threads (createListener / createLocalTCPListener only; see README). */
  workers?: WorkersOptions;
  /** Active connections at most; at the limit accepting pauses (README "Admission control"). */
  maxConnections?: number;
  /** Connections from one peer address at most; over it a connection is closed at accept. */
  maxConnectionsPerAddress?: number;
  /** The leading bits of an IPv6 client that maxConnectionsPerAddress counts as one address (1..128, default 64). */
  perAddressIPv6Prefix?: number;
  /**
   * While accepting is paused at a limit, clients allowed to wait in the kernel's accept queue;
   * the oldest beyond it are reset (native backend, Linux; README "Admission control").
   */
  maxQueuedConnections?: number;
  /** Seconds of TCP_DEFER_ACCEPT (Linux): accept a connection only once its first bytes arrive. */
  deferAccept?: number;
}

export interface CloseOptions {
  /** End active connections and give them this long (ms) before destroying them. */
  gracefulTimeout?: number;
}

export function validateBaseOptions(options: BaseListenerOptions): void {
  if (typeof options !== 'object' || options === null) throw codedError(ErrorCodes.INVALID_OPTION, 'options must be an object');
  checkInteger('backlog', options.backlog, 0, 2 ** 31 - 1);
  checkInteger('gracefulCloseTimeout', options.gracefulCloseTimeout, 0, MAX_TIMER_MS);
  checkInteger('idleTimeout', options.idleTimeout, 0, MAX_TIMER_MS);
  checkInteger('fd', options.fd, 0, 2 ** 31 - 1);
  validateAdmissionOptions(options);
  checkPort(options.port);
  if (options.fd === undefined && options.port === undefined) {
    throw codedError(ErrorCodes.INVALID_OPTION, 'either port or fd is required');
  }
}

/**
 * A numeric port is checked when the listener is made, as net.Server checks it, not only when
 * listen() resolves it; a service name ('https') is left to the resolver.
 */
function checkPort(port: unknown): void {
  if (port === undefined || typeof port === 'string') return;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw codedError(ErrorCodes.INVALID_OPTION, `port must be an integer 0..65535 or a service name, got ${String(port)}`, { option: 'port' });
  }
}

export function validateCloseOptions(options: CloseOptions): void {
  if (typeof options !== 'object' || options === null) throw codedError(ErrorCodes.INVALID_OPTION, 'close options must be an object');
  checkInteger('gracefulTimeout', options.gracefulTimeout, 0, MAX_TIMER_MS);
}
