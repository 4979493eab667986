// README: "Stats and /metrics". The listener counts every connection: accepted, closed,
// active, and leaked (accepted - closed - active, which should stay 0), plus handshakes and
// accept errors. stats() is a plain object; metrics() is the same in the Prometheus text
// format, here served on a separate plain-HTTP port for a scraper.
//
//   node dist/examples/stats_and_metrics.js [port] [pki-dir]
//   curl http://127.0.0.1:<metrics port>/metrics
import http from 'node:http';
import type net from 'node:net';
import { createListener, loadServerCredential, PROMETHEUS_CONTENT_TYPE } from '../src/index.js'; // 'native-tls-listener' in your code
import { exampleSetup } from './support/demo_pki.js';

const { port, pki } = await exampleSetup();

const listener = createListener({ host: '127.0.0.1', port, credential: loadServerCredential(pki.server) }, (socket) => {
  socket.end('hello\n');
});
const address = await listener.listen();
console.log(`listening on ${address.address}:${address.port}`);

const metrics = http.createServer((request, response) => {
  if (request.url === '/metrics') {
    response.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE });
    response.end(listener.metrics({ listener: 'example' })); // labels are added to every sample
  } else if (request.url === '/stats') {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(listener.stats()));
  } else {
    response.writeHead(404).end();
  }
});
metrics.listen(0, '127.0.0.1', () => {
  const { port: metricsPort } = metrics.address() as net.AddressInfo;
  console.log(`metrics on http://127.0.0.1:${metricsPort}/metrics`);
});
