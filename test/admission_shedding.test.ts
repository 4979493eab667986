// Load shedding: while accepting is paused at maxConnections/maxPendingHandshakes, at most
// maxQueuedConnections clients wait in the kernel's accept queue; the oldest beyond that are
// accepted in C++ and reset before any JS. Real clients on loopback; no speed is asserted.
import net from 'node:net';
import { expect } from 'chai';
import { createListener, createLocalTCPListener, ErrorCodes } from '../src/index.js';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import { expectBalanced, rawConnect, useCleanup } from './support/tls_harness.js';
import type { RawClient } from './support/tls_harness.js';
import { descriptorsOnPort, openDescriptors, waitForFdCount } from './support/registry_support.js';
import { Client, connect, waitUntil, within } from './support/sockets.js';
import { listenerModes, ModeHarness, WORKER_COUNT } from './support/listener_modes.js';

/** Samples how many connection descriptors the server holds on `port`; the largest count seen. */
function watchServerConnections(port: number): { stop(): number } {
  let largest = 0;
  const timer = setInterval(() => {
    largest = Math.max(largest, descriptorsOnPort(port, 'connections').length);
  }, 2);
  return {
    stop() {
      clearInterval(timer);
      return largest;
    },
  };
}

describe('maxQueuedConnections: while accepting is paused, the oldest clients beyond the bound are reset', () => {
  const cleanup = useCleanup();
  let pki: TestPki;
  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
  });

  // On one thread the acceptor sheds; with workers the accept thread feeding them does, and the
  // books are the listener's as a whole. The accept thread does not say which limit it paused
  // at, nor how long the kernel's queue is (admission.pausedFor and backlog are null there).
  for (const mode of listenerModes) {
    const label = mode === 'single' ? 'native backend' : `native backend, ${WORKER_COUNT} workers`;
    describe(label, () => {
      const harness = new ModeHarness(mode);
      after(() => harness.close());

      it('20 clients stalling their handshake with maxPendingHandshakes 2 and maxQueuedConnections 3: 2 in setup, 3 waiting, the 15 oldest reset', async function () {
        if (process.platform !== 'linux') this.skip(); // the accept queue's length is read with TCP_INFO
        this.timeout(30_000);
        const descriptorsBefore = openDescriptors();
        const listener = harness.tls(
          {
            host: '127.0.0.1',
            port: 0,
            backend: 'native',
            credential: { cert: pki.server.cert, key: pki.server.key },
            handshakeTimeout: 2000,
            maxPendingHandshakes: 2,
            maxQueuedConnections: 3,
          },
          () => () => undefined,
        );
        cleanup.add(() => listener.close());
        const { port } = await within(listener.listen(), 'the listener to start');
        const watch = watchServerConnections(port);
        // Silent clients, connected one after the other: each stalls its handshake until the timeout.
        const clients: RawClient[] = [];
        for (let i = 0; i < 20; i++) clients.push(await rawConnect(cleanup, port));

        const reset = (): RawClient[] => clients.filter((c) => c.closed);
        await waitUntil(() => reset().length === 15, () => `15 clients reset (${reset().length}; ${JSON.stringify(listener.stats().admission)})`);
        const paused = listener.stats();
        // Shed while the first two still stall, not as their timeouts free slots.
        expect(paused.handshakes.timedOut, 'stalls timed out when the 15 were reset').to.equal(0);
        expect(paused.accepted).to.equal(2);
        if (mode === 'single') {
          expect(paused.admission.pausedFor).to.equal('maxPendingHandshakes');
          expect(paused.admission.backlog, 'clients left waiting').to.equal(3);
        }
        expect(paused.rejected.maxQueuedConnections).to.equal(15);
        // The oldest waiters went: the two first clients are in setup, the three newest wait.
        expect(clients.map((c) => c.closed)).to.deep.equal([...Array<boolean>(2).fill(false), ...Array<boolean>(15).fill(true), ...Array<boolean>(3).fill(false)]);
        for (const client of clients.slice(2, 17)) {
          expect(client.error?.code, 'how a shed client learns it').to.equal('ECONNRESET');
          expect(client.received.length, 'bytes a shed client got').to.equal(0);
        }

        // The stalls time out two at a time; the three that waited are accepted and time out too.
        await waitUntil(() => clients.every((c) => c.closed), () => `every client closed (${JSON.stringify(listener.stats().handshakes)})`, 15_000);
        expect(watch.stop(), 'connections the server held at once at most').to.equal(2);
        for (const client of [...clients.slice(0, 2), ...clients.slice(17)]) expect(client.error, 'a client served, not shed').to.equal(null);
        await waitUntil(() => listener.stats().handshakes.timedOut === 5, () => `5 timeouts counted (${JSON.stringify(listener.stats().handshakes)})`);
        const stats = listener.stats();
        expect({ accepted: stats.accepted, timedOut: stats.handshakes.timedOut, rejected: stats.rejected.maxQueuedConnections }).to.deep.equal({
          accepted: 5,
          timedOut: 5,
          rejected: 15,
        });
        expect(stats.admission.sheddingCpuMs).to.be.a('number').and.at.least(0);
        expect(listener.metrics()).to.include('native_tls_listener_connections_rejected_total{reason="maxQueuedConnections"} 15');
        expectBalanced(listener);
        await within(listener.close(), 'the listener to close');
        await waitForFdCount(descriptorsBefore);
      });

      it('plain TCP with maxConnections 1 and maxQueuedConnections 0: while one client holds the slot, each newcomer is reset', async function () {
        if (process.platform !== 'linux') this.skip();
        this.timeout(15_000);
        const listener = harness.tcp({ port: 0, host: '127.0.0.1', backend: 'native', maxConnections: 1, maxQueuedConnections: 0 }, () => (socket) => {
          socket.write('hello\n');
          socket.resume();
          return new Promise<void>((resolve) => socket.once('end', resolve));
        });
        cleanup.add(() => listener.close());
        const { port } = await within(listener.listen(), 'the listener to start');
        const holder = await connect(port);
        cleanup.add(() => holder.destroy());
        expect(await holder.line(0)).to.equal('hello');

        const newcomers: Client[] = [];
        cleanup.add(() => newcomers.forEach((c) => c.destroy()));
        for (let i = 0; i < 3; i++) {
          // The reset may come before the client's connect() has reported success: either way, ECONNRESET.
          const client = new Client(net.connect({ port, host: '127.0.0.1' }));
          newcomers.push(client);
          await client.whenClosed();
          expect(client.error?.code).to.equal('ECONNRESET');
          expect(client.received).to.equal('');
        }
        expect(listener.stats().rejected.maxQueuedConnections).to.equal(3);

        // The slot freed, a newcomer is served again.
        holder.socket.end();
        await waitUntil(() => listener.stats().active === 0, 'the holder released');
        const next = await connect(port);
        cleanup.add(() => next.destroy());
        expect(await next.line(0)).to.equal('hello');
        expect({ accepted: listener.stats().accepted, leaked: listener.stats().leaked }).to.deep.equal({ accepted: 2, leaked: 0 });
      });
    });
  }

  it('js backend: accepted and without effect, since net.Server closes every connection over a limit at once', async function () {
    this.timeout(10_000);
    const listener = createLocalTCPListener({ port: 0, backend: 'js', maxConnections: 1, maxQueuedConnections: 5 }, (socket) => {
      socket.write('hello\n');
      socket.resume();
      return new Promise<void>((resolve) => socket.once('end', resolve));
    });
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the listener to start');
    const holder = await connect(port);
    cleanup.add(() => holder.destroy());
    expect(await holder.line(0)).to.equal('hello');
    const second = await connect(port);
    cleanup.add(() => second.destroy());
    await second.whenClosed();
    expect(listener.stats().rejected).to.include({ maxConnections: 1, maxQueuedConnections: 0 });
  });
});

describe('maxQueuedConnections is validated', () => {
  let pki: TestPki;
  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
  });

  for (const value of [-1, 1.5, 2 ** 31, '3'] as const) {
    it(`createLocalTCPListener({ maxConnections: 1, maxQueuedConnections: ${JSON.stringify(value)} }) throws ERR_INVALID_OPTION`, () => {
      expect(() => createLocalTCPListener({ port: 0, maxConnections: 1, ...({ maxQueuedConnections: value } as object) }, () => undefined))
        .to.throw()
        .with.property('code', ErrorCodes.INVALID_OPTION);
    });
  }

  it('without maxConnections or maxPendingHandshakes there is no pause to bound: refused, on both listeners', () => {
    expect(() => createLocalTCPListener({ port: 0, maxQueuedConnections: 3 }, () => undefined))
      .to.throw(/needs maxConnections/)
      .with.property('code', ErrorCodes.INVALID_OPTION);
    expect(() => createListener({ port: 0, credential: { cert: pki.server.cert, key: pki.server.key }, maxQueuedConnections: 3 }, () => undefined))
      .to.throw(/needs maxConnections/)
      .with.property('code', ErrorCodes.INVALID_OPTION);
  });

  it('with workers too: without maxConnections there is no pause to bound, and a bad value is refused', () => {
    const workers = { count: 1, module: 'unused.js' };
    expect(() => createLocalTCPListener({ port: 0, maxQueuedConnections: 3, workers }))
      .to.throw(/needs maxConnections/)
      .with.property('code', ErrorCodes.INVALID_OPTION);
    expect(() => createLocalTCPListener({ port: 0, maxConnections: 1, maxQueuedConnections: -1, workers }))
      .to.throw(/maxQueuedConnections/)
      .with.property('code', ErrorCodes.INVALID_OPTION);
  });
});
