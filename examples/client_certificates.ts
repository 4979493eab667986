// README: "Client certificates". The server asks for a certificate and never requires one. A
// chain of 1 to 4 certificates is checked (signatures up to its last certificate, validity
// dates); a bad one fails the connection before the handler runs. The trust anchor is the
// client's own last certificate: pin it yourself (here, by fingerprint) if that matters.
//
//   node dist/examples/client_certificates.js [port] [pki-dir]
//   openssl s_client -quiet -connect 127.0.0.1:<port> -cert client.pem -key client.key
import { createListener, loadServerCredential } from '../src/index.js'; // 'native-tls-listener' in your code
import type { ClientCertRejectedError } from '../src/index.js';
import { exampleSetup } from './support/demo_pki.js';

const { port, pki } = await exampleSetup();

const listener = createListener(
  { host: '127.0.0.1', port, credential: loadServerCredential(pki.server), requestClientCert: true },
  (socket, info) => {
    const [leaf] = info.peerCertificateChain; // leaf first; [] for an anonymous client
    const anchor = info.peerCertificateChain.at(-1);
    socket.end(
      leaf
        ? `hello, ${leaf.subject.replace(/\n/g, ', ')} (chain of ${info.peerCertificateChain.length}, anchor ${anchor?.fingerprint256})\n`
        : 'hello, anonymous client\n',
    );
  },
);

// A rejected chain never reaches the handler; it is reported here with the reason.
listener.on('tlsClientError', (error: Error & { code?: string }, failure: { id: number }) => {
  const reason = error.code === 'ERR_CLIENT_CERT_REJECTED' ? (error as ClientCertRejectedError).reason : 'handshake';
  console.log(`connection ${failure.id} rejected: ${error.code ?? 'error'} (${reason}): ${error.message}`);
});

const address = await listener.listen();
console.log(`listening on ${address.address}:${address.port}`);
