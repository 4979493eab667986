// README: "Behind a load balancer (PROXY protocol)". A TLS server behind HAProxy in TCP mode
// (`server app 127.0.0.1:<port> send-proxy-v2 proxy-v2-options authority,ssl`): it greets
// each client by the address HAProxy saw, not by HAProxy's own. Only HAProxy on this host
// may send the header; anyone else is closed before TLS with ERR_PROXY_PROTOCOL_UNTRUSTED.
//
//   node dist/examples/behind_load_balancer.js [port] [pki-dir]
import { createListener, loadServerCredential } from '../src/index.js'; // 'native-tls-listener' in your code
import { exampleSetup } from './support/demo_pki.js';

const { port, pki } = await exampleSetup();

const listener = createListener(
  {
    host: '127.0.0.1',
    port,
    credential: loadServerCredential(pki.server),
    proxyProtocol: 'any',
    trustedProxies: ['127.0.0.1', '::1'],
  },
  (socket, info) => {
    const via = info.proxy?.command === 'local' ? ' (a health check)' : ` via ${info.proxy?.proxyAddress ?? '?'}`;
    socket.end(`hello ${info.remoteAddress ?? '?'}:${info.remotePort ?? '?'}${via}\n`);
  },
);
listener.on('tlsClientError', (error: Error & { code?: string }, info) => {
  console.log(`refused ${info.remoteAddress ?? '?'}: ${error.code ?? error.message}`);
});

const address = await listener.listen();
console.log(`listening on ${address.address}:${address.port} (${listener.backend} backend)`);
