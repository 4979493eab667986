// The TLS listener: the shared Listener with a TLS setup stage, plus the original router's
// routing: connections that used the SNI credential come from browsers and go to HTTPS.
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import { checkInteger, Listener, MAX_TIMER_MS } from '../listener.js';
import type { BaseListenerOptions, Handler, ListenerDependencies } from '../listener.js';
import { codedError, ErrorCodes } from '../errors.js';
import { toSecureContext } from './credentials.js';
import type { ServerCredential } from './credentials.js';
import { TlsSetup } from './tls_setup.js';
import { rejectUnknownOptions } from '../option_keys.js';
import type { ConnectionInfo } from './tls_setup.js';

export type RequestListener = (request: http.IncomingMessage, response: http.ServerResponse) => void;

export interface ListenerOptions extends BaseListenerOptions {
  /** Serves clients that send no SNI (and all clients when there is no sniCredential). */
  credential: ServerCredential | tls.SecureContext;
  /** Serves clients that send SNI. */
  sniCredential?: ServerCredential | tls.SecureContext;
  /** The server's protocols; the first in the client's list that is here wins. */
  alpn?: string[];
  /** Ask for a client certificate, never require one (default false). */
  requestClientCert?: boolean;
  /** ms for the whole TLS setup (default 60000). */
  handshakeTimeout?: number;
  /** Log each failed TLS setup to stderr (default false). */
  logTLSErrors?: boolean;
  /**
   * Where connections that used the SNI credential go: an http.Server / http2 server (given
   * each connection as a 'connection'), or a request listener served over HTTP/1.1 and h2.
   */
  http?: net.Server | RequestListener;
}

export type ConnectionHandler = Handler<tls.TLSSocket, ConnectionInfo>;

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 60_000;

function validateTlsOptions(options: ListenerOptions): void {
  if (options.alpn !== undefined) {
    if (!Array.isArray(options.alpn) || options.alpn.some((p) => typeof p !== 'string' || p.length === 0 || Buffer.byteLength(p) > 255)) {
      throw codedError(ErrorCodes.INVALID_OPTION, 'alpn must be an array of protocol names of 1 to 255 bytes');
    }
  }
  checkInteger('handshakeTimeout', options.handshakeTimeout, 1, MAX_TIMER_MS);
  if (options.http !== undefined && typeof options.http !== 'function' && typeof options.http.emit !== 'function') {
    throw codedError(ErrorCodes.INVALID_OPTION, 'http must be an http.Server or a request listener');
  }
}

function routeToHttp(target: net.Server | RequestListener): (socket: tls.TLSSocket) => void {
  if (typeof target !== 'function') return (socket) => void target.emit('connection', socket);
  // A request listener is served over h2 when ALPN chose it, HTTP/1.1 otherwise; both servers
  // only parse: they never listen.
  const http1 = http.createServer(target);
  let h2: http2.Http2Server | undefined;
  return (socket) => {
    if (socket.alpnProtocol === 'h2') {
      h2 ??= http2.createServer(target as unknown as (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) => void);
      h2.emit('connection', socket);
    } else {
      http1.emit('connection', socket);
    }
  };
}

export class TLSListener extends Listener<tls.TLSSocket, ConnectionInfo> {
  constructor(options: ListenerOptions, handler: ConnectionHandler, dependencies?: ListenerDependencies) {
    if (typeof options !== 'object' || options === null) throw codedError(ErrorCodes.INVALID_OPTION, 'options must be an object');
    rejectUnknownOptions('createListener', options);
    validateTlsOptions(options);
    const purpose = { requestClientCert: options.requestClientCert === true };
    const setup = new TlsSetup({
      context: toSecureContext(options.credential, 'credential', purpose),
      ...(options.sniCredential !== undefined
        ? { sniContext: toSecureContext(options.sniCredential, 'sniCredential', purpose) }
        : {}),
      ...(options.alpn !== undefined ? { alpn: options.alpn } : {}),
      requestClientCert: purpose.requestClientCert,
      handshakeTimeout: options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    });
    const serveHttp = options.http !== undefined ? routeToHttp(options.http) : undefined;
    const routed: ConnectionHandler = serveHttp
      ? (socket, info) => (info.sniCredentialUsed ? serveHttp(socket) : handler(socket, info))
      : handler;
    super(options, setup, routed, dependencies);
    if (options.logTLSErrors === true) {
      this.on('tlsClientError', (error: Error & { code?: string }, info: { id: number; remoteAddress?: string }) => {
        console.error(`native-tls-listener: TLS setup of connection ${info.id} from ${info.remoteAddress ?? '?'} failed: ${error.code ?? ''} ${error.message}`);
      });
    }
  }
}

/** A TLS listener; call listen() to start. */
export function createListener(options: ListenerOptions, handler: ConnectionHandler): TLSListener {
  return new TLSListener(options, handler);
}
