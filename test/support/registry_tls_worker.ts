// A worker thread that runs a TLS listener for test/tls_worker.test.ts (through
// registry_worker_host.ts). It posts { event: 'listening', port, backend } once listening and
// answers { ask: 'stats' } with { event: 'stats', stats }. Its handler greets each connection
// with its id, echoes what it reads, and keeps the connection open until the peer (or the
// worker's end) closes it.
import { parentPort, workerData } from 'node:worker_threads';
import { TLSListener } from '../../src/index.js';
import type { ListenerStats } from '../../src/index.js';

export interface TlsWorkerConfig {
  backend: 'native' | 'js';
  cert: string;
  key: string;
}

export type TlsWorkerEvent =
  | { event: 'listening'; port: number; backend: string }
  | { event: 'stats'; stats: ListenerStats }
  | { event: 'failed'; message: string };

const port = parentPort;
if (port !== null) {
  const config = workerData as TlsWorkerConfig;
  const post = (message: TlsWorkerEvent): void => port.postMessage(message);
  const listener = new TLSListener(
    { port: 0, host: '127.0.0.1', backend: config.backend, credential: { cert: config.cert, key: config.key } },
    (socket, info) => {
      socket.on('data', (chunk: Buffer) => socket.write(chunk));
      socket.write(`hello ${info.id}\n`);
      return new Promise<void>((resolve) => socket.once('close', () => resolve()));
    },
  );
  port.on('message', (message: { ask?: string }) => {
    if (message.ask === 'stats') post({ event: 'stats', stats: listener.stats() });
  });
  listener.listen().then(
    (address) => post({ event: 'listening', port: address.port, backend: listener.backend }),
    (error: unknown) => post({ event: 'failed', message: String(error) }),
  );
}
