// README: "Graceful shutdown". close() stops accepting at once (the port is free again), ends
// every open connection and gives each peer `gracefulTimeout` ms to close before destroying
// it, then resolves once every descriptor is released: the final stats show active 0 and
// leaked 0.
//
//   node dist/examples/graceful_shutdown.js [port] [pki-dir]    then Ctrl-C
import { once } from 'node:events';
import { createListener, loadServerCredential } from '../src/index.js'; // 'native-tls-listener' in your code
import { exampleSetup } from './support/demo_pki.js';

const { port, pki } = await exampleSetup();

const listener = createListener(
  { host: '127.0.0.1', port, credential: loadServerCredential(pki.server) },
  async (socket) => {
    // A long-lived connection: echo until the client ends its side.
    socket.write('echo server; stop the server to see the connection closed\n');
    socket.pipe(socket, { end: false });
    await once(socket, 'end');
  },
);
const address = await listener.listen();
console.log(`listening on ${address.address}:${address.port}`);

const shutdown = async (signal: NodeJS.Signals): Promise<void> => {
  console.log(`${signal}: closing ${listener.stats().active} connection(s)`);
  await listener.close({ gracefulTimeout: 2000 });
  console.log(`closed: ${JSON.stringify(listener.stats())}`);
};
process.once('SIGINT', (signal) => void shutdown(signal));
process.once('SIGTERM', (signal) => void shutdown(signal));
