// createListener / createLocalTCPListener with `workers`: what the main thread checks before
// any worker starts, and what each worker gets to rebuild the listener from (cloneable only).
import { codedError, ErrorCodes } from '../errors.js';
import { checkInteger } from '../validation.js';
import { ADMISSION_LIMIT_MAX } from '../accept/admission.js';
import { rejectUnknownOptions } from '../option_keys.js';
import type { TCPListenerOptions } from '../tcp_listener.js';
import type { ListenerOptions } from '../tls/tls_listener.js';
import { toSecureContext } from '../tls/credentials.js';
import { cloneableCredential } from './worker_credentials.js';
import { proxyProtocolSettings } from '../proxy/proxy_options.js';
import type { ProxyProtocolOptions } from '../proxy/proxy_options.js';
import type { WorkersOptions } from './worker_options.js';
import { WorkersListener } from './worker_listener.js';
import type { WorkerListenerOptions } from './protocol.js';

/** The PROXY protocol settings for the workers, checked here (ERR_INVALID_OPTION) so no worker fails on them. */
function proxyOptionsFor(
  options: ProxyProtocolOptions & { maxConnectionsPerAddress?: number; perAddressIPv6Prefix?: number },
): Pick<WorkerListenerOptions, 'proxyProtocol' | 'trustedProxies' | 'maxConnectionsPerAddress' | 'perAddressIPv6Prefix'> {
  if (proxyProtocolSettings(options) === undefined) return {};
  const { proxyProtocol, trustedProxies, maxConnectionsPerAddress, perAddressIPv6Prefix } = options;
  return {
    ...(proxyProtocol !== undefined ? { proxyProtocol } : {}),
    ...(trustedProxies !== undefined ? { trustedProxies: [...trustedProxies] } : {}),
    // The workers read the headers, so they count each header's client (in the accept thread's table).
    ...(maxConnectionsPerAddress !== undefined ? { maxConnectionsPerAddress } : {}),
    // The key of a header's client is made in the worker (TS) and again by the addon: one prefix.
    ...(perAddressIPv6Prefix !== undefined ? { perAddressIPv6Prefix } : {}),
  };
}

/**
 * What the main thread's accept thread applies for the listener as a whole (validated with the
 * base options): maxConnections, maxConnectionsPerAddress (with proxyProtocol, to the header's
 * client, which the workers count in the same table), maxQueuedConnections (shedding from the
 * kernel's queue while paused at a limit) and deferAccept on its listening socket.
 */
function acceptThreadLimits(
  options: ListenerOptions | TCPListenerOptions,
): Pick<ListenerOptions, 'maxConnections' | 'maxConnectionsPerAddress' | 'perAddressIPv6Prefix' | 'maxQueuedConnections' | 'deferAccept' | 'proxyProtocol'> {
  const { maxConnections, maxConnectionsPerAddress, perAddressIPv6Prefix, maxQueuedConnections, deferAccept, proxyProtocol } = options;
  return { maxConnections, maxConnectionsPerAddress, perAddressIPv6Prefix, maxQueuedConnections, deferAccept, proxyProtocol };
}

export function createTlsWorkersListener(options: ListenerOptions & { workers: WorkersOptions }): WorkersListener {
  if (typeof options !== 'object' || options === null) throw codedError(ErrorCodes.INVALID_OPTION, 'options must be an object');
  rejectUnknownOptions('createListener', options);
  if (options.http !== undefined) {
    throw codedError(ErrorCodes.INVALID_OPTION, "with workers, the SNI route is the workers module's `http` export, not the http option");
  }
  const credential = cloneableCredential(options.credential, 'credential');
  const sniCredential = cloneableCredential(options.sniCredential, 'sniCredential');
  // Built once here only to report a bad credential now rather than from every worker.
  const purpose = { requestClientCert: options.requestClientCert === true };
  if (credential) toSecureContext(credential, 'credential', purpose);
  if (sniCredential) toSecureContext(sniCredential, 'sniCredential', purpose);
  const { port, host, fd, backlog, backend, gracefulCloseTimeout, idleTimeout, alpn, requestClientCert, handshakeTimeout, logTLSErrors } =
    options;
  const given = { gracefulCloseTimeout, idleTimeout, alpn, requestClientCert, handshakeTimeout, logTLSErrors, credential, sniCredential };
  const forWorkers = {
    ...(Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined)) as WorkerListenerOptions),
    ...proxyOptionsFor(options),
  };
  const { maxPendingHandshakes } = options;
  checkInteger('maxPendingHandshakes', maxPendingHandshakes, 1, ADMISSION_LIMIT_MAX);
  return new WorkersListener(
    'tls',
    { port, host, fd, backlog, backend, maxPendingHandshakes, ...acceptThreadLimits(options) },
    forWorkers,
    options.workers,
  );
}

export function createTcpWorkersListener(options: TCPListenerOptions & { workers: WorkersOptions }): WorkersListener {
  rejectUnknownOptions('createLocalTCPListener', options);
  const { workers, port, host, fd, backlog, backend, gracefulCloseTimeout, idleTimeout } = options;
  return new WorkersListener(
    'tcp',
    { port, host: host ?? '127.0.0.1', fd, backlog, backend, ...acceptThreadLimits(options) },
    {
      ...(gracefulCloseTimeout !== undefined ? { gracefulCloseTimeout } : {}),
      ...(idleTimeout !== undefined ? { idleTimeout } : {}),
      ...proxyOptionsFor(options),
    },
    workers,
  );
}
