// README: "Every core: worker threads". The addon accepts on a thread of its own and hands
// each connection to the worker thread with the fewest active connections; each worker runs
// examples/worker_threads/handler.ts (its default export is the handler). Credentials and
// options come from here; the workers share the session ticket keys, so a session from one
// resumes on any other. stats() counts every worker's connections in one book.
//
//   node dist/examples/worker_threads.js [port] [pki-dir]
//   openssl s_client -quiet -connect 127.0.0.1:<port> -CAfile <pki-dir>/ca.pem
import { createListener, loadServerCredential } from '../src/index.js'; // 'native-tls-listener' in your code
import type { WorkerEvent } from '../src/index.js';
import { exampleSetup } from './support/demo_pki.js';

const { port, pki } = await exampleSetup();

const listener = createListener({
  host: '127.0.0.1',
  port,
  credential: loadServerCredential(pki.server),
  workers: { count: 2, module: new URL('./worker_threads/handler.js', import.meta.url) },
});
// A worker that dies is replaced (at once, then with a doubling back-off if it keeps dying).
listener.on('worker', (event: WorkerEvent) => console.log(`worker ${event.id}: ${event.type}`));
const address = await listener.listen();
console.log(`listening on ${address.address}:${address.port} (${listener.stats().workers.length} workers)`);

process.once('SIGTERM', () => {
  void listener.close({ gracefulTimeout: 2000 }).then(() => {
    const { accepted, closed, active, leaked, workers } = listener.stats();
    console.log(`closed: ${JSON.stringify({ accepted, closed, active, leaked, perWorker: workers.map((w) => w.accepted) })}`);
  });
});
