// README: "A TLS protocol server". A line protocol over TLS: each line comes back upper-cased,
// `bye` ends the connection. The handler's promise is the connection's lifetime: when it
// settles, the listener closes the connection gracefully and counts it closed.
//
//   node dist/examples/tls_protocol_server.js [port] [pki-dir]
//   openssl s_client -quiet -connect 127.0.0.1:<port> -CAfile <pki-dir>/ca.pem
import readline from 'node:readline';
import { createListener, loadServerCredential } from '../src/index.js'; // 'native-tls-listener' in your code
import { exampleSetup } from './support/demo_pki.js';

const { port, pki } = await exampleSetup();

const listener = createListener(
  {
    host: '127.0.0.1',
    port,
    // Throws ERR_INVALID_CREDENTIAL naming the file when a certificate or key is wrong.
    credential: loadServerCredential(pki.server),
  },
  async (socket, info) => {
    socket.write(`hello, connection ${info.id}\n`);
    // readline keeps whole lines in memory; a protocol facing the internet bounds them.
    for await (const line of readline.createInterface({ input: socket, crlfDelay: Infinity })) {
      if (line === 'bye') break;
      socket.write(`${line.toUpperCase()}\n`);
    }
  },
);

const address = await listener.listen();
console.log(`listening on ${address.address}:${address.port} (${listener.backend} backend)`);
