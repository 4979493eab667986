// Where connections that used the SNI credential go: the original router sends browsers to
// HTTPS, here the `http` option, an HTTP server that never listens and is handed each
// connection once its TLS setup is done.
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';

export type RequestListener = (request: http.IncomingMessage, response: http.ServerResponse) => void;

export function routeToHttp(target: net.Server | RequestListener): (socket: tls.TLSSocket) => void {
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
