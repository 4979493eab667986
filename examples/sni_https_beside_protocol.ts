// README: "SNI-routed HTTPS beside a protocol". One port, two services, as in the SimpleX
// router: a client that sends SNI (every browser, `curl https://localhost:<port>`) is served
// with the SNI credential and handed to HTTP; a client that sends none gets the primary
// credential and the protocol handler.
//
//   node dist/examples/sni_https_beside_protocol.js [port] [pki-dir]
//   curl --cacert <pki-dir>/ca.pem https://localhost:<port>/
//   openssl s_client -quiet -connect 127.0.0.1:<port> -CAfile <pki-dir>/ca.pem
import { createListener, loadServerCredential } from '../src/index.js'; // 'native-tls-listener' in your code
import { exampleSetup } from './support/demo_pki.js';

const { port, pki } = await exampleSetup();

const listener = createListener(
  {
    host: '127.0.0.1',
    port,
    credential: loadServerCredential(pki.server), // no SNI: the protocol's certificate
    sniCredential: loadServerCredential(pki.sni), // SNI: a certificate for localhost
    // A request listener (served over HTTP/1.1, or h2 when ALPN picks it), or an http.Server,
    // https.Server or Http2SecureServer.
    http: (request, response) => {
      // HTTP/1.1 names the site in `host`, h2 in `:authority`.
      const site = request.headers.host ?? request.headers[':authority'];
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end(`HTTPS for ${String(site)}: you asked for ${request.url ?? '/'}\n`);
    },
    alpn: ['h2', 'http/1.1'],
  },
  (socket) => {
    // Only clients without SNI get here.
    socket.end('protocol: hello, client without SNI\n');
  },
);

const address = await listener.listen();
console.log(`listening on ${address.address}:${address.port}`);
