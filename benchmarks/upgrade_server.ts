// The benchmark's `end` server (socket.end('x') after the TLS handshake) with upgrades by the
// library API, for benchmarks/upgrade_restart.ts: the same program started with --upgrade
// takes the listening socket over from the running one, which drains and exits.
//
//   node dist/benchmarks/upgrade_server.js --control PATH --cert FILE --key FILE [--upgrade] [--backend native|js]
import fs from 'node:fs';
import { createListener, drainListener, takeOver, UpgradeControl } from '../src/index.js';
import type { BackendKind, ListenerOptions } from '../src/index.js';

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index === -1 ? undefined : process.argv[index + 1];
}

const controlPath = argument('--control');
const certFile = argument('--cert');
const keyFile = argument('--key');
if (controlPath === undefined || certFile === undefined || keyFile === undefined) throw new Error('--control, --cert and --key are required');
const backend = (argument('--backend') ?? 'native') as BackendKind;

const handOver = process.argv.includes('--upgrade') ? await takeOver({ path: controlPath }) : undefined;
const place: Pick<ListenerOptions, 'fd' | 'host' | 'port'> = handOver ? { fd: handOver.fds[0] as number } : { host: '127.0.0.1', port: 0 };
const listener = createListener(
  { ...place, backlog: 4096, backend, credential: { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) } },
  (socket) => void socket.end('x'),
);
const address = await listener.listen();
if (handOver) await handOver.confirm();
process.stdout.write(`listening on 127.0.0.1:${address.port}\n`);

const control = await UpgradeControl.listen([listener], { path: controlPath });
control.on('handOffFailed', (error: Error) => process.stderr.write(`upgrade abandoned: ${error.message}\n`));
control.once('handedOff', () => {
  void drainListener(listener, 5000).then(() => {
    process.stdout.write(`drained: ${JSON.stringify(listener.stats())}\n`);
    process.exit(0);
  });
});
process.once('SIGTERM', () => {
  void control
    .close()
    .then(() => listener.close({ gracefulTimeout: 5000 }))
    .then(() => {
      process.stdout.write(`closed: ${JSON.stringify(listener.stats())}\n`);
      process.exit(0);
    });
});
