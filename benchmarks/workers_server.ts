// One trial's server for the multi-core benchmark (benchmarks/workers.ts): N threads or
// processes serving TLS handshakes on 127.0.0.1, each connection ended with socket.end('x').
//
//   node dist/benchmarks/workers_server.js CONTENDER N CERT KEY
//     workers        this package: one process, the addon's accept thread, N worker threads
//     cluster-rr     node:cluster, N workers, the primary accepts and hands round-robin
//     cluster-none   node:cluster, SCHED_NONE: every worker accepts on the shared socket
//     reuseport      N processes listening with reusePort (Node >= 23.1)
//
// Prints {"type":"ready","port","pids"} (every process serving, for CPU and RSS from /proc),
// then answers `counts` on stdin with {"type":"counts","perWorker":[...]} (connections since
// the last `counts`), and exits on `exit` or EOF.
import cluster from 'node:cluster';
import { fork } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import tls from 'node:tls';
import { createListener } from '../src/index.js';

type Contender = 'workers' | 'cluster-rr' | 'cluster-none' | 'reuseport';
const noop = (): void => {};

function say(message: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(message) + '\n');
}

/** A cluster worker or reusePort child: serves, counts, answers the parent's count requests. */
async function serveChild(port: number, reusePort: boolean, cert: string, key: string): Promise<void> {
  const credential = { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
  // As benchmarks/server.ts builds the bare-Node baseline: the context built once.
  const secureContext = tls.createSecureContext(credential);
  let served = 0;
  const server = tls.createServer({ ...credential, secureContext }, (socket) => {
    served++;
    socket.on('error', noop);
    socket.end('x');
  });
  server.on('tlsClientError', noop);
  await new Promise<void>((resolve) => server.listen({ port, host: '127.0.0.1', backlog: 1024, ...(reusePort ? { reusePort: true } : {}) }, resolve));
  const address = server.address();
  process.send?.({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 });
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'count') {
      process.send?.({ type: 'count', served });
      served = 0;
    }
  });
}

interface Child {
  pid: number;
  ask(): Promise<number>;
  kill(): void;
}

function wrapChild(child: { pid?: number | undefined; send(message: unknown): boolean; on(event: 'message', f: (m: { type?: string; served?: number }) => void): unknown; kill(): unknown }): Child {
  const waiters: Array<(n: number) => void> = [];
  child.on('message', (m) => {
    if (m.type === 'count') waiters.shift()?.(m.served ?? 0);
  });
  return {
    pid: child.pid ?? 0,
    ask: () => new Promise<number>((resolve) => {
      waiters.push(resolve);
      child.send({ type: 'count' });
    }),
    kill: () => void child.kill(),
  };
}

function awaitListening(child: { once(event: 'message', f: (m: { type?: string; port?: number }) => void): unknown }): Promise<number> {
  return new Promise((resolve) => child.once('message', (m) => resolve(m.port ?? 0)));
}

async function primary(contender: Contender, count: number, cert: string, key: string): Promise<{ port: number; pids: number[]; counts: () => Promise<number[]>; stop: () => Promise<void> }> {
  if (contender === 'workers') {
    const listener = createListener({
      host: '127.0.0.1',
      port: 0,
      credential: { key: fs.readFileSync(key), cert: fs.readFileSync(cert) },
      workers: { count, module: new URL('./workers_handler.js', import.meta.url) },
    });
    listener.on('tlsClientError', noop);
    const { port } = await listener.listen();
    let last = listener.stats().workers.map((w) => w.accepted);
    return {
      port,
      pids: [process.pid],
      counts: () => {
        const now = listener.stats().workers.map((w) => w.accepted);
        const delta = now.map((n, i) => n - (last[i] ?? 0));
        last = now;
        return Promise.resolve(delta);
      },
      stop: () => listener.close(),
    };
  }
  const children: Child[] = [];
  let port = 0;
  if (contender === 'reuseport') {
    for (let i = 0; i < count; i++) {
      const child = fork(process.argv[1] as string, ['child', String(port), 'reuse', cert, key], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      port = await awaitListening(child);
      children.push(wrapChild(child));
    }
  } else {
    cluster.schedulingPolicy = contender === 'cluster-rr' ? cluster.SCHED_RR : cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: process.argv[1] as string, args: ['child', '0', 'cluster', cert, key], silent: false });
    for (let i = 0; i < count; i++) {
      const worker = cluster.fork();
      port = await awaitListening(worker);
      children.push(wrapChild({ pid: worker.process.pid, send: (m) => worker.send(m as never), on: (e, f) => worker.on(e, f), kill: () => worker.kill() }));
    }
  }
  return {
    port,
    pids: [process.pid, ...children.map((c) => c.pid)],
    counts: () => Promise.all(children.map((c) => c.ask())),
    stop: () => {
      for (const c of children) c.kill();
      return Promise.resolve();
    },
  };
}

async function main(): Promise<void> {
  const [mode, a, b, cert, key] = process.argv.slice(2);
  if (mode === 'child') {
    await serveChild(Number(a), b === 'reuse', cert as string, key as string);
    return;
  }
  // CONTENDER N CERT KEY
  const [count, certFile, keyFile] = [Number(a), b as string, cert as string];
  const server = await primary(mode as Contender, count, certFile, keyFile);
  say({ type: 'ready', port: server.port, pids: server.pids });
  const input = readline.createInterface({ input: process.stdin });
  for await (const line of input) {
    if (line === 'counts') say({ type: 'counts', perWorker: await server.counts() });
    else if (line === 'exit') break;
  }
  await server.stop();
  process.exit(0);
}

await main();
