// A listener inside a worker thread: when the worker ends, by terminate() or by its own
// process.exit(), every descriptor it held (listening socket, accepted connections, the
// addon's poll and timer handles) is released, the port is free, and nothing crashes.
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { expect } from 'chai';
import type { WorkerConfig, WorkerEvent } from './fixtures/listener_worker.js';
import type { HostCommand } from './fixtures/worker_host.js';
import { WorkerHost } from './support/child_listener.js';
import { compiledFixture } from './support/paths.js';
import { descriptorCount } from './support/proc.js';
import { Cleanup, canBind, connect, delay, waitUntil, within } from './support/sockets.js';
import type { Client } from './support/sockets.js';
import { createTestPki } from './support/pki.js';
import { captureClientHello, rawConnect, tlsConnect } from './support/tls_harness.js';
import type { RawClient } from './support/tls_harness.js';

const backends = ['native', 'js'] as const;

interface RunningWorker {
  worker: Worker;
  port: number;
  errors: Error[];
  exited: Promise<number>;
}

async function startWorker(cleanup: Cleanup, backend: WorkerConfig['backend']): Promise<RunningWorker> {
  const worker = new Worker(compiledFixture('listener_worker'), { workerData: { backend } satisfies WorkerConfig });
  const errors: Error[] = [];
  worker.on('error', (error: Error) => errors.push(error));
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  cleanup.add(() => worker.terminate());
  const listening = new Promise<number>((resolve) => {
    const onMessage = (message: WorkerEvent): void => {
      if (message.event !== 'listening') return;
      worker.off('message', onMessage);
      resolve(message.port);
    };
    worker.on('message', onMessage);
  });
  const exitedEarly = exited.then((code) => Promise.reject(new Error(`the worker exited with ${code}: ${errors.join('; ')}`)));
  const port = await within(Promise.race([listening, exitedEarly]), 'the worker to listen');
  return { worker, port, errors, exited };
}

async function connectClients(cleanup: Cleanup, port: number, count: number): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < count; i++) {
    const c = await connect(port);
    cleanup.add(() => c.destroy());
    expect(await c.line()).to.equal(`hello ${i + 1}`);
    clients.push(c);
  }
  return clients;
}

describe('a listener inside a worker thread: ending the worker releases every descriptor', () => {
  before(async () => {
    // Let Node open what it opens lazily for a first worker and a first socket, so the
    // descriptor counts below compare like with like.
    const warm = new Worker('', { eval: true });
    await once(warm, 'exit');
    const cleanup = new Cleanup();
    const { worker, port } = await startWorker(cleanup, 'js');
    (await connectClients(cleanup, port, 1)).forEach((c) => c.destroy());
    await worker.terminate();
    await cleanup.run();
  });

  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      const endings = [
        ['worker.terminate()', (running: RunningWorker) => running.worker.terminate()],
        ['process.exit() in the worker', (running: RunningWorker) => running.worker.postMessage({ cmd: 'exit' })],
      ] as const;
      for (const [ending, end] of endings) {
        it(`${ending} with clients connected: descriptors back to the baseline, port free, no crash`, async () => {
          const baseline = descriptorCount();
          const running = await startWorker(cleanup, backend);
          const clients = await connectClients(cleanup, running.port, 3);
          expect(descriptorCount(), 'descriptors while serving').to.be.above(baseline);

          await end(running);
          const exitCode = await within(running.exited, 'the worker to exit');
          expect(exitCode).to.equal(ending === 'worker.terminate()' ? 1 : 0);
          expect(running.errors.map(String), 'errors from the worker').to.deep.equal([]);

          // The worker's side of each connection closed: its clients see the end.
          await Promise.all(clients.map((c) => c.whenClosed()));
          await waitUntil(() => descriptorCount() === baseline, `the descriptor count to return to ${baseline}`);
          expect(await canBind(running.port), 'the port is free again').to.equal(true);
        });
      }
    });
  }
});

/** Clients that connect, read the greeting and hang up, over and over, until stopped. */
class ConnectionStorm {
  served = 0;
  failed = 0;
  private running = true;
  private readonly loops: Array<Promise<void>>;

  constructor(port: number, parallel: number) {
    this.loops = Array.from({ length: parallel }, () => this.loop(port));
  }

  private async loop(port: number): Promise<void> {
    while (this.running) {
      try {
        const c = await connect(port, '127.0.0.1', 2000);
        try {
          if (/^hello \d+$/.test(await c.line(0, 2000))) this.served++;
        } finally {
          c.destroy();
        }
      } catch {
        this.failed++; // refused or reset once the worker is gone
        await delay(5);
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

/**
 * One round: a host process whose worker listens, a storm of clients, then the worker ends.
 * Checks that the worker exits as expected, and that the host survives with every descriptor
 * released and the port free.
 */
async function stormThenEnd(
  cleanup: Cleanup,
  backend: WorkerConfig['backend'],
  command: HostCommand,
  expectedExitCode: number,
): Promise<void> {
  const host = WorkerHost.start({ backend });
  cleanup.add(() => host.stop());
  const { port, baseline, baselineLinks } = await host.waitFor('listening', () => true, { timeoutMs: 10_000 });
  const storm = new ConnectionStorm(port, 32);
  cleanup.add(() => storm.stop());
  await waitUntil(() => storm.served >= 50, 'the storm to get going');

  host.send(command);
  const exit = await host.waitFor('workerExit');
  await storm.stop();
  expect({ exitCode: exit.exitCode, errors: exit.errors }).to.deep.equal({ exitCode: expectedExitCode, errors: [] });

  await expectHostReleasedEverything(host, port, baseline, baselineLinks);
}

/**
 * After the worker ended: the host gets back to the descriptors it had before the worker
 * listened (none of the worker's left open), the port is free, and the host lives on and exits
 * cleanly.
 */
async function expectHostReleasedEverything(host: WorkerHost, port: number, baseline: number, baselineLinks: string[]): Promise<void> {
  let fds = await host.request({ cmd: 'fds' }, 'fds');
  const deadline = Date.now() + 5000;
  while (fds.count !== baseline && Date.now() < deadline) {
    await delay(20);
    fds = await host.request({ cmd: 'fds' }, 'fds');
  }
  const extra = fds.links.filter((link) => !baselineLinks.includes(link));
  expect(extra, `host descriptors left after the worker ended (${fds.count}, baseline ${baseline})`).to.deep.equal([]);
  expect(fds.count).to.equal(baseline);
  expect(await canBind(port), 'the port is free again').to.equal(true);
  expect(host.running, `the host process died\n${host.transcript()}`).to.equal(true);
  await host.stop();
  expect({ code: host.exitCode, signal: host.exitSignal }, host.transcript()).to.deep.equal({ code: 0, signal: null });
}

describe('a worker ended in the middle of a connection storm: its process survives and releases everything', () => {
  // The worker runs in a separate host process (test/fixtures/worker_host.ts): if ending it
  // crashes the process, the host dies and this test sees that instead of dying with it. The
  // crash this guards against is a race (the worker's last loop turn finding the listening
  // socket readable), so each test runs a few rounds.
  const ROUNDS = 3;
  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      const endings = [
        ['worker.terminate()', { cmd: 'terminate' }, 1],
        ['process.exit() in the worker', { cmd: 'exit-worker' }, 0],
      ] as const;
      for (const [ending, command, expectedExitCode] of endings) {
        it(`${ending} while clients keep connecting (${ROUNDS} rounds)`, async () => {
          for (let round = 0; round < ROUNDS; round++) await stormThenEnd(cleanup, backend, command, expectedExitCode);
        });
      }
    });
  }
});

/**
 * Clients for one handle kind, connected once the worker listens: each has been served by the
 * worker (or, for the peeker, is waiting in it) when this resolves.
 */
async function clientsFor(cleanup: Cleanup, kind: 'tcp' | 'tls-alpn' | 'workers', port: number): Promise<Array<{ whenClosed(): Promise<void> }>> {
  if (kind === 'tcp') return connectClients(cleanup, port, 3);
  if (kind === 'workers') {
    const clients: Client[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await connect(port);
      cleanup.add(() => c.destroy());
      expect(await c.line()).to.match(/^\d+ \d+$/);
      clients.push(c);
    }
    return clients;
  }
  // Half a ClientHello each: these wait in the native peeker, their bytes in the kernel.
  const hello = await captureClientHello({ ALPNProtocols: ['h2'], servername: 'localhost' });
  const waiting: RawClient[] = [];
  for (let i = 0; i < 3; i++) {
    const raw = await rawConnect(cleanup, port);
    raw.socket.write(hello.subarray(0, hello.length >> 1));
    waiting.push(raw);
  }
  // A whole handshake after them: the acceptor took the waiting ones first (one queue, in order).
  const served = tlsConnect(cleanup, port, { ALPNProtocols: ['h2'], servername: 'localhost' });
  await served.receive('hello ');
  expect(served.socket.alpnProtocol).to.equal('h2');
  return [...waiting, served];
}

describe('each native handle kind, made in a worker thread that exits without closing it: no crash, every descriptor released', () => {
  // The worker never calls close(): its environment's teardown (native/addon.h) closes every
  // native handle it made. Each scenario runs in a host process of its own (worker_host.ts), so
  // a crash in the teardown fails the test instead of killing mocha.
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let credential: { cert: string; key: string };
  before(async () => {
    const pki = await createTestPki();
    credential = { cert: pki.server.cert, key: pki.server.key };
  });

  const kinds = [
    ['tcp', 'a listener on the native backend (Acceptor)'],
    ['tls-alpn', 'a TLS listener with alpn, clients waiting in the ClientHello peeker (HelloPeeker)'],
    ['workers', 'a listener with workers of its own (Dispatcher, a WorkerQueue per nested worker)'],
  ] as const;
  const endings = [
    ['worker.terminate()', { cmd: 'terminate' }, 1],
    ['process.exit() in the worker', { cmd: 'exit-worker' }, 0],
  ] as const;
  for (const [kind, what] of kinds) {
    for (const [ending, command, expectedExitCode] of endings) {
      it(`${what}, then ${ending}`, async function () {
        this.timeout(30_000);
        const host = WorkerHost.start({ backend: 'native', kind, ...(kind === 'tls-alpn' ? { credential } : {}) });
        cleanup.add(() => host.stop());
        const { port, baseline, baselineLinks } = await host.waitFor('listening', () => true, { timeoutMs: 15_000 });
        const clients = await clientsFor(cleanup, kind, port);

        host.send(command);
        const exit = await host.waitFor('workerExit', () => true, { timeoutMs: 15_000 });
        expect({ exitCode: exit.exitCode, errors: exit.errors }).to.deep.equal({ exitCode: expectedExitCode, errors: [] });
        await Promise.all(clients.map((c) => c.whenClosed()));

        await expectHostReleasedEverything(host, port, baseline, baselineLinks);
      });
    }
  }
});
