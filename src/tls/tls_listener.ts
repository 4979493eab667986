// The TLS listener: the shared Listener with a TLS setup stage, plus the original router's
// routing: connections that used the SNI credential come from browsers and go to HTTPS.
import type http from 'node:http';
import type tls from 'node:tls';
import { Listener } from '../listener.js';
import { checkInteger, MAX_TIMER_MS } from '../validation.js';
import type { BaseListenerOptions, Handler, ListenerDependencies } from '../listener.js';
import { codedError, ErrorCodes } from '../errors.js';
import { toSecureContext } from './credentials.js';
import type { ServerCredential } from './credentials.js';
import { TlsSetup } from './tls_setup.js';
import { contextsAfter } from './credential_swap.js';
import type { CredentialUpdate } from './credential_swap.js';
import { rejectUnknownOptions } from '../option_keys.js';
import type { ConnectionInfo } from './tls_setup.js';
import { HttpRoute } from './http_route.js';
import { createTlsWorkersListener } from '../workers/create.js';
import type { WorkersListener } from '../workers/worker_listener.js';
import type { WorkersOptions } from '../workers/worker_options.js';
import { behindProxy } from '../proxy/behind_proxy.js';
import type { HttpTarget } from './http_route.js';
import { ADMISSION_LIMIT_MAX } from '../accept/admission.js';

export type { HttpTarget, RequestListener } from './http_route.js';
export type { CredentialUpdate } from './credential_swap.js';

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
   * Connections in TLS setup at once at most; at the limit accepting pauses until one
   * finishes (native backend; README "Admission control"). Off by default.
   */
  maxPendingHandshakes?: number;
  /**
   * Where connections that used the SNI credential go, by the protocol ALPN chose: a request
   * listener (h2 and HTTP/1.1), an http.Server or https.Server (HTTP/1.1; h2 is then not
   * offered to them), or an Http2SecureServer (h2, and HTTP/1.1 with allowHTTP1).
   */
  http?: HttpTarget;
}

export type ConnectionHandler = Handler<tls.TLSSocket, ConnectionInfo>;

/** Parts of the TLS listener a test (or an embedder) can replace. */
export interface TlsListenerDependencies extends ListenerDependencies {
  /** Options of the http.Server built around a request listener given as `http` (Node's defaults otherwise). */
  http1ServerOptions?: http.ServerOptions;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 60_000;

function validateTlsOptions(options: ListenerOptions): void {
  if (options.alpn !== undefined) {
    if (!Array.isArray(options.alpn) || options.alpn.some((p) => typeof p !== 'string' || p.length === 0 || Buffer.byteLength(p) > 255)) {
      throw codedError(ErrorCodes.INVALID_OPTION, 'alpn must be an array of protocol names of 1 to 255 bytes');
    }
  }
  checkInteger('handshakeTimeout', options.handshakeTimeout, 1, MAX_TIMER_MS);
  checkInteger('maxPendingHandshakes', options.maxPendingHandshakes, 1, ADMISSION_LIMIT_MAX);
}

export class TLSListener extends Listener<tls.TLSSocket, ConnectionInfo> {
  private readonly tlsSetup: TlsSetup;
  private readonly contextPurpose: { requestClientCert: boolean };

  constructor(options: ListenerOptions, handler: ConnectionHandler, dependencies?: TlsListenerDependencies) {
    if (typeof options !== 'object' || options === null) throw codedError(ErrorCodes.INVALID_OPTION, 'options must be an object');
    rejectUnknownOptions('createListener', options);
    validateTlsOptions(options);
    const purpose = { requestClientCert: options.requestClientCert === true };
    const route = options.http !== undefined ? new HttpRoute(options.http, dependencies?.http1ServerOptions) : undefined;
    const setup = new TlsSetup({
      context: toSecureContext(options.credential, 'credential', purpose),
      ...(options.sniCredential !== undefined
        ? { sniContext: toSecureContext(options.sniCredential, 'sniCredential', purpose) }
        : {}),
      ...(options.alpn !== undefined ? { alpn: options.alpn } : {}),
      ...(options.alpn !== undefined && route ? { sniAlpn: route.alpnFor(options.alpn) } : {}),
      requestClientCert: purpose.requestClientCert,
      handshakeTimeout: options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    });
    // The PROXY header precedes the ClientHello and shares the handshake's timeout.
    const routed: ConnectionHandler = route
      ? (socket, info) => (info.sniCredentialUsed ? route.serve(socket) : handler(socket, info))
      : handler;
    super(options, behindProxy(setup, options, options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, ErrorCodes.TLS_HANDSHAKE_TIMEOUT, dependencies?.clientAddressCounts, dependencies?.acceptorOptions?.addressTableSize), routed, dependencies);
    this.tlsSetup = setup;
    this.contextPurpose = purpose;
    if (route) this.once('close', () => route.close());
    this.once('close', () => setup.close());
    if (options.logTLSErrors === true) {
      this.on('tlsClientError', (error: Error & { code?: string }, info: { id: number; remoteAddress?: string }) => {
        console.error(`native-tls-listener: TLS setup of connection ${info.id} from ${info.remoteAddress ?? '?'} failed: ${error.code ?? ''} ${error.message}`);
      });
    }
  }

  /**
   * Serves connections accepted from now on with new credentials; connections in their
   * handshake finish with the old ones. The new contexts are all built first: a bad credential
   * throws (ERR_INVALID_CREDENTIAL, ERR_INVALID_OPTION) and the listener keeps what it had.
   */
  setCredentials(update: CredentialUpdate): void {
    this.tlsSetup.replaceContexts(contextsAfter(this.tlsSetup.servingContexts, update, this.contextPurpose));
  }
}

/**
 * A TLS listener; call listen() to start. With `workers`, connections are served by worker
 * threads running `workers.module` (its default export is the handler) and no handler is given.
 */
export function createListener(options: ListenerOptions & { workers: WorkersOptions }): WorkersListener;
export function createListener(options: ListenerOptions, handler: ConnectionHandler): TLSListener;
export function createListener(options: ListenerOptions, handler?: ConnectionHandler): TLSListener | WorkersListener {
  if (typeof options === 'object' && options !== null && options.workers !== undefined) {
    return createTlsWorkersListener({ ...options, workers: options.workers });
  }
  return new TLSListener(options, handler as ConnectionHandler);
}
