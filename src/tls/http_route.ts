// Where connections that used the SNI credential go: the original router sends browsers to
// HTTPS, here the `http` option, an HTTP server that never listens and is handed each
// connection once its TLS setup is done, by the protocol ALPN chose: h2 to an HTTP/2 server,
// anything else (http/1.1, or no ALPN) to an HTTP/1 server. A plain server (http.Server, the
// h2 server built around a request listener) takes a connection on 'connection'; a tls.Server
// (https.Server, Http2SecureServer) serves already secure sockets on 'secureConnection', and
// given 'connection' would run TLS again over the decrypted stream.
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import { codedError, ErrorCodes } from '../errors.js';
import { debug } from '../diagnostics.js';
import { ConnectionChecks, tracksHttp1Connections } from './http_connection_checks.js';

export type RequestListener = (request: http.IncomingMessage, response: http.ServerResponse) => void;

/** The forms `http` may take. */
export type HttpTarget = RequestListener | http.Server | https.Server | http2.Http2SecureServer;

const H2 = 'h2';
const HTTP1 = 'http/1.1';
/** The ALPN names a route may or may not speak; other names are none of its business. */
const HTTP_PROTOCOLS: readonly string[] = [H2, HTTP1];

interface Destination {
  server: net.Server;
  event: 'connection' | 'secureConnection';
  checks: ConnectionChecks;
}

function destination(server: net.Server, event: Destination['event']): Destination {
  return { server, event, checks: new ConnectionChecks(server) };
}

// node:http2 does not export the class; one server made here (never listening) tells it.
type Http2SecureServerClass = abstract new (...args: never[]) => http2.Http2SecureServer;
let http2SecureServerClass: Http2SecureServerClass | undefined;
function isHttp2SecureServer(value: tls.Server): value is http2.Http2SecureServer {
  http2SecureServerClass ??= (Object.getPrototypeOf(http2.createSecureServer()) as { constructor: Http2SecureServerClass }).constructor;
  return value instanceof http2SecureServerClass;
}

export class HttpRoute {
  /** The HTTP protocols (ALPN names) the route speaks. */
  readonly protocols: readonly string[];
  private readonly http1: Destination;
  private readonly h2: Destination | undefined;

  /**
   * Throws ERR_INVALID_OPTION unless `target` is one of the HttpTarget forms. `http1Options`
   * configure the http.Server built around a request listener (Node's defaults otherwise); a
   * given server keeps its own settings.
   */
  constructor(target: unknown, http1Options: http.ServerOptions = {}) {
    if (typeof target === 'function') {
      const listener = target as RequestListener;
      this.http1 = destination(http.createServer(http1Options, listener), 'connection');
      // Node's HTTP/2 compatibility API gives the listener request and response objects
      // that stand in for HTTP/1's.
      this.h2 = destination(
        http2.createServer(listener as unknown as (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) => void),
        'connection',
      );
      this.protocols = [H2, HTTP1];
    } else if (target instanceof http.Server) {
      this.http1 = destination(target, 'connection');
      this.protocols = [HTTP1];
    } else if (target instanceof https.Server) {
      this.http1 = destination(target, 'secureConnection');
      this.protocols = [HTTP1];
    } else if (target instanceof tls.Server && isHttp2SecureServer(target)) {
      // One server for both: it answers HTTP/1 itself, by allowHTTP1 or with a refusal.
      this.http1 = destination(target, 'secureConnection');
      this.h2 = this.http1;
      // allowHTTP1 is private; it is what makes Node track the server's HTTP/1 connections.
      this.protocols = tracksHttp1Connections(target) ? [H2, HTTP1] : [H2];
    } else {
      throw codedError(
        ErrorCodes.INVALID_OPTION,
        'http must be a request listener, an http.Server, an https.Server or an Http2SecureServer (http2.createSecureServer)',
      );
    }
  }

  /**
   * What connections routed here may negotiate: the listener's protocols without the HTTP
   * versions the route cannot speak, so a client that offers one it can is never given
   * another (h2 to an HTTP/1 server, http/1.1 to an HTTP/2-only one).
   */
  alpnFor(serverProtocols: readonly string[]): string[] {
    return serverProtocols.filter((protocol) => !HTTP_PROTOCOLS.includes(protocol) || this.protocols.includes(protocol));
  }

  serve(socket: tls.TLSSocket): void {
    const destination = socket.alpnProtocol === H2 ? this.h2 : this.http1;
    if (destination === undefined) {
      // alpnFor() keeps h2 from a route that cannot speak it; this only guards that promise.
      debug('h2 negotiated for a route without an HTTP/2 server; closing');
      socket.destroy();
      return;
    }
    destination.checks.ensure();
    if (destination.event === 'secureConnection') {
      // tls.Server gives its sockets `server`; Node 20's http2 writes through it for HTTP/1.
      (socket as unknown as { server: net.Server }).server = destination.server;
    }
    destination.server.emit(destination.event, socket);
  }

  /** The listener has closed: stop what serving started. */
  close(): void {
    this.http1.checks.stop();
    this.h2?.checks.stop();
  }
}
