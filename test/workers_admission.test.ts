// Admission limits with `workers`: maxConnections and maxPendingHandshakes hold for the listener
// as a whole. The accept thread stops taking connections at the limit, from the books every
// worker publishes, and the kernel's backlog holds the next clients: none is reset.
import net from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import { createListener, createLocalTCPListener } from '../src/index.js';
import type { WorkersListener } from '../src/index.js';
import type { WorkersHandlerConfig } from './fixtures/workers_handler.js';
import { compiledFixture } from './support/paths.js';
import { createTestPki } from './support/pki.js';
import { Cleanup, connect, delay, waitUntil, within } from './support/sockets.js';
import type { Client } from './support/sockets.js';

const handlerModule = compiledFixture('workers_handler');

describe('workers: maxConnections holds for the listener as a whole', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('maxConnections 10 with 2 workers and 50 holding clients: 10 served at a time, the rest wait in the backlog, none reset', async function () {
    this.timeout(60_000);
    const listener: WorkersListener = createLocalTCPListener({
      port: 0,
      maxConnections: 10,
      workers: { count: 2, module: handlerModule, workerData: { mode: 'hold' } satisfies WorkersHandlerConfig },
    });
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the workers to start', 10_000);
    const clients: Client[] = await Promise.all(Array.from({ length: 50 }, () => connect(port)));
    for (const c of clients) cleanup.add(() => c.destroy());
    let mostActive = 0;
    const served = (): Client[] => clients.filter((c) => c.received.length > 0);
    const done = new Set<Client>();
    while (done.size < 50) {
      // Each round: the limit fills up, then stays there; the ones served hang up.
      await waitUntil(() => served().length - done.size === Math.min(10, 50 - done.size), () => `${Math.min(10, 50 - done.size)} more served (${served().length - done.size})`, 10_000);
      await delay(100);
      const now = served().filter((c) => !done.has(c));
      const stats = listener.stats();
      mostActive = Math.max(mostActive, stats.active);
      expect(now.length, 'served at once').to.equal(Math.min(10, 50 - done.size));
      expect(stats.active).to.be.at.most(10);
      for (const c of now) {
        c.destroy();
        done.add(c);
      }
    }
    expect(clients.filter((c) => c.error !== null).map((c) => c.error?.code), 'reset or failed').to.deep.equal([]);
    const stats = listener.stats();
    expect(mostActive).to.equal(10);
    expect(stats.accepted).to.equal(50);
    expect(stats.admission.pauses).to.be.at.least(1);
    expect(new Set(stats.workers.map((w) => w.accepted > 0)), 'both workers served').to.deep.equal(new Set([true]));
    await waitUntil(() => listener.stats().active === 0, 'every connection to close');
    expect(listener.stats().leaked).to.equal(0);
  });
});

describe('workers: maxPendingHandshakes holds for the listener as a whole', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('maxPendingHandshakes 4 with 2 workers: 12 silent clients, 4 in setup at a time; handshakes that finish let the next ones in', async function () {
    this.timeout(60_000);
    const pki = await createTestPki();
    const listener: WorkersListener = createListener({
      port: 0,
      host: '127.0.0.1',
      credential: pki.server,
      maxPendingHandshakes: 4,
      workers: { count: 2, module: handlerModule, workerData: { mode: 'greet' } satisfies WorkersHandlerConfig },
    });
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the workers to start', 10_000);
    // Silent TCP clients sit in setup until they send a ClientHello (or the handshake times out).
    const silent: net.Socket[] = [];
    for (let i = 0; i < 12; i++) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      cleanup.add(() => socket.destroy());
      silent.push(socket);
    }
    await waitUntil(() => listener.stats().accepted === 4, () => `4 accepted (${listener.stats().accepted})`);
    await delay(300);
    expect(listener.stats().accepted, 'accepted while 4 are in setup').to.equal(4);
    // Every client now does its handshake; the ones accepted finish and let the next ones in.
    const handshakes = silent.map(
      (socket) =>
        new Promise<string>((resolve) => {
          const client = tls.connect({ socket, rejectUnauthorized: false });
          let text = '';
          client.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          client.on('error', () => resolve('error'));
          client.on('close', () => resolve(text));
        }),
    );
    const greetings = await within(Promise.all(handshakes), 'all 12 handshakes', 20_000);
    expect(greetings.filter((g) => /^\d+ \d+\n$/.test(g)).length, JSON.stringify(greetings)).to.equal(12);
    const stats = listener.stats();
    expect(stats.accepted).to.equal(12);
    expect(stats.handshakes.completed).to.equal(12);
    expect(stats.admission.pauses).to.be.at.least(1);
  });
});
