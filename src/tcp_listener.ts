// The plain-TCP listener (the original's local control-port variant): no setup stage, the
// handler gets the socket as soon as it is accepted.
import type net from 'node:net';
import { Listener } from './listener.js';
import { rejectUnknownOptions } from './option_keys.js';
import { createTcpWorkersListener } from './workers/create.js';
import type { WorkersListener } from './workers/worker_listener.js';
import type { WorkersOptions } from './workers/worker_options.js';
import { ErrorCodes } from './errors.js';
import { behindProxy } from './proxy/behind_proxy.js';
import type { ProxiedInfo } from './proxy/proxy_setup.js';
import type { BaseListenerOptions, ConnectionSetup, Handler, ListenerDependencies } from './listener.js';

/** `remoteAddress`, `remotePort` and `proxy` are set with the proxyProtocol option (src/proxy/). */
export interface TCPConnectionInfo extends ProxiedInfo {
  id: number;
}

/** ms a client behind a PROXY protocol load balancer has to send its header (TCP has no handshake timeout). */
const PROXY_HEADER_TIMEOUT_MS = 60_000;

export interface TCPListenerOptions extends BaseListenerOptions {
  port: number | string;
}

const noSetup: ConnectionSetup<net.Socket, TCPConnectionInfo> = {
  canFail: false,
  start(socket, record, done) {
    done(record, socket, { id: record.id });
  },
};

export class TCPListener extends Listener<net.Socket, TCPConnectionInfo> {
  constructor(options: TCPListenerOptions, handler: Handler<net.Socket, TCPConnectionInfo>, dependencies?: ListenerDependencies) {
    rejectUnknownOptions('createLocalTCPListener', options);
    super(options, behindProxy(noSetup, options, PROXY_HEADER_TIMEOUT_MS, ErrorCodes.PROXY_PROTOCOL_INVALID, dependencies?.clientAddressCounts, dependencies?.acceptorOptions?.addressTableSize), handler, dependencies);
  }
}

/**
 * A plain-TCP listener, on 127.0.0.1 unless `host` says otherwise. Call listen() to start. With
 * `workers`, worker threads running `workers.module` serve the connections (no handler here).
 */
export function createLocalTCPListener(options: TCPListenerOptions & { workers: WorkersOptions }): WorkersListener;
export function createLocalTCPListener(options: TCPListenerOptions, handler: Handler<net.Socket, TCPConnectionInfo>): TCPListener;
export function createLocalTCPListener(
  options: TCPListenerOptions,
  handler?: Handler<net.Socket, TCPConnectionInfo>,
): TCPListener | WorkersListener {
  if (typeof options === 'object' && options !== null && options.workers !== undefined) {
    return createTcpWorkersListener({ ...options, workers: options.workers });
  }
  return new TCPListener({ ...options, host: options.host ?? '127.0.0.1' }, handler as Handler<net.Socket, TCPConnectionInfo>);
}
