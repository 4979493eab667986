// Where connections that used the SNI credential go: the original router sends browsers to
// HTTPS, here the `http` option, an HTTP server that never listens and is handed each
// connection once its TLS setup is done.
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import { ConnectionChecks } from './http_connection_checks.js';

export type RequestListener = (request: http.IncomingMessage, response: http.ServerResponse) => void;

interface Destination {
  server: net.Server;
  checks: ConnectionChecks;
}

function destination(server: net.Server): Destination {
  return { server, checks: new ConnectionChecks(server) };
}

export class HttpRoute {
  private readonly http1: Destination;
  private readonly h2: Destination | undefined;

  /**
   * `http1Options` configure the http.Server built around a request listener (Node's defaults
   * otherwise); a given server keeps its own settings.
   */
  constructor(target: net.Server | RequestListener, http1Options: http.ServerOptions = {}) {
    if (typeof target !== 'function') {
      this.http1 = destination(target);
      return;
    }
    // A request listener is served over h2 when ALPN chose it, HTTP/1.1 otherwise.
    this.http1 = destination(http.createServer(http1Options, target));
    this.h2 = destination(
      http2.createServer(target as unknown as (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) => void),
    );
  }

  serve(socket: tls.TLSSocket): void {
    const { server, checks } = socket.alpnProtocol === 'h2' && this.h2 ? this.h2 : this.http1;
    checks.ensure();
    server.emit('connection', socket);
  }

  /** The listener has closed: stop what serving started. */
  close(): void {
    this.http1.checks.stop();
    this.h2?.checks.stop();
  }
}
