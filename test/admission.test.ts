// Admission control: maxConnections and maxPendingHandshakes stop the native acceptor (the
// kernel's backlog holds the clients, nobody is reset) until a slot frees; a connection over
// maxConnectionsPerAddress is closed at accept; deferAccept keeps a silent connection in the
// kernel until it speaks. Real clients on loopback; no speed is asserted.
import net from 'node:net';
import { expect } from 'chai';
import { createLocalTCPListener, ErrorCodes, TCPListener } from '../src/index.js';
import type { ListenerStats, TCPConnectionInfo } from '../src/index.js';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import { expectBalanced, rawConnect, startListener, tlsConnect, useCleanup } from './support/tls_harness.js';
import type { RawClient } from './support/tls_harness.js';
import { canBind, connect, delay, waitUntil, within } from './support/sockets.js';
import type { Client } from './support/sockets.js';

const backends = ['native', 'js'] as const;

/** A handler that greets and holds the connection until the client ends it. */
function greetAndHold(socket: net.Socket, info: TCPConnectionInfo): Promise<void> {
  socket.write(`hello ${info.id}\n`);
  socket.resume();
  return new Promise((resolve) => socket.once('end', resolve));
}

async function tcpListener(
  cleanup: ReturnType<typeof useCleanup>,
  options: Partial<ConstructorParameters<typeof TCPListener>[0]>,
): Promise<{ listener: TCPListener; port: number; backpressure: Array<[boolean, string]> }> {
  const listener = createLocalTCPListener({ port: 0, ...options }, greetAndHold);
  cleanup.add(() => listener.close());
  const backpressure: Array<[boolean, string]> = [];
  listener.on('acceptBackpressure', (paused, reason) => backpressure.push([paused, reason]));
  const { port } = await within(listener.listen(), 'the listener to start');
  return { listener, port, backpressure };
}

/** Samples stats().active every few ms until stopped; the largest value seen. */
function watchActive(listener: { stats(): ListenerStats }): { stop(): number } {
  let largest = 0;
  const timer = setInterval(() => {
    largest = Math.max(largest, listener.stats().active);
  }, 2);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(largest, listener.stats().active);
    },
  };
}

describe('maxConnections: at the limit the acceptor stops and the backlog holds the rest', () => {
  const cleanup = useCleanup();

  it('native backend: 50 holding clients with maxConnections 10 are served 10 at a time, none reset', async function () {
    this.timeout(20_000);
    const { listener, port, backpressure } = await tcpListener(cleanup, { backend: 'native', maxConnections: 10 });
    const watch = watchActive(listener);
    const clients: Client[] = [];
    cleanup.add(() => clients.forEach((c) => c.destroy()));
    // Every client connects: the kernel completes the handshake into the backlog.
    for (let i = 0; i < 50; i++) clients.push(await connect(port));

    const greeted = (): Client[] => clients.filter((c) => c.received.startsWith('hello'));
    await waitUntil(() => greeted().length === 10, () => `10 clients greeted (${greeted().length})`);
    await waitUntil(() => listener.stats().admission.backlog === 40, () => `40 in the backlog (${JSON.stringify(listener.stats().admission)})`);
    const paused = listener.stats();
    expect(paused.active).to.equal(10);
    expect(paused.accepted).to.equal(10);
    expect(paused.admission.pausedFor).to.equal('maxConnections');
    expect(backpressure).to.deep.equal([[true, 'maxConnections']]);

    // Each client served lets go; the next ones are taken from the backlog as slots free.
    const done = new Set<Client>();
    while (done.size < 50) {
      const serving = greeted().filter((c) => !done.has(c));
      expect(serving.length, 'clients being served at once').to.be.within(1, 10);
      for (const c of serving) {
        c.socket.end();
        done.add(c);
      }
      await waitUntil(
        () => done.size === 50 || greeted().length > done.size,
        () => `more clients served (${greeted().length} greeted, ${done.size} done)`,
      );
    }
    await waitUntil(() => listener.stats().active === 0, 'every connection released');
    const largest = watch.stop();
    expect(largest, 'connections active at once at most').to.equal(10);
    expect(clients.filter((c) => c.error !== null).map((c) => c.error?.code), 'clients reset').to.deep.equal([]);
    const final = listener.stats();
    expect(final.accepted).to.equal(50);
    expect(final.rejected).to.deep.equal({ maxConnections: 0, maxPendingHandshakes: 0, maxConnectionsPerAddress: 0, addressTableFull: 0, maxQueuedConnections: 0 });
    expect(final.admission.pausedFor).to.equal(null);
    expect(final.admission.pauses).to.be.at.least(1);
    expect(final.admission.pausedMs).to.be.above(0);
    expect(backpressure.length % 2, 'each pause ends').to.equal(0);
    backpressure.forEach(([isPaused], i) => expect(isPaused, `event ${i}`).to.equal(i % 2 === 0));
  });

  it('js backend: net.Server cannot stop accepting, so a connection over the limit is closed and counted', async function () {
    this.timeout(10_000);
    const { listener, port, backpressure } = await tcpListener(cleanup, { backend: 'js', maxConnections: 2 });
    const clients: Client[] = [];
    cleanup.add(() => clients.forEach((c) => c.destroy()));
    for (let i = 0; i < 3; i++) clients.push(await connect(port));
    await waitUntil(() => clients.filter((c) => c.received.startsWith('hello')).length === 2 && clients.some((c) => c.closed), 'two served, one closed');
    expect(listener.stats().rejected.maxConnections).to.equal(1);
    expect(listener.stats().accepted).to.equal(2);
    expect(backpressure).to.deep.equal([]);
    // A slot freed is a slot taken again.
    clients[0]?.socket.end();
    await waitUntil(() => listener.stats().active === 1, 'the first connection released');
    const next = await connect(port);
    cleanup.add(() => next.destroy());
    expect(await next.line(0)).to.match(/^hello \d+$/);
  });
});

describe('maxPendingHandshakes: connections in TLS setup at once are bounded, the rest wait in the backlog', () => {
  const cleanup = useCleanup();
  let pki: TestPki;
  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
  });

  it('native backend: 20 clients stalling their handshake with maxPendingHandshakes 5 are accepted 5 at a time, none reset', async function () {
    this.timeout(20_000);
    const running = await startListener(
      cleanup,
      { backend: 'native', credential: { cert: pki.server.cert, key: pki.server.key }, handshakeTimeout: 300, maxPendingHandshakes: 5 },
      () => undefined,
    );
    const backpressure: Array<[boolean, string]> = [];
    running.listener.on('acceptBackpressure', (paused, reason) => backpressure.push([paused, reason]));
    const watch = watchActive(running.listener);
    // Silent clients: connected, never a byte, so each stalls its handshake until the timeout.
    const stalling: RawClient[] = [];
    for (let i = 0; i < 20; i++) stalling.push(await rawConnect(cleanup, running.port));
    await waitUntil(() => running.listener.stats().accepted === 5, 'the first 5 accepted');
    await waitUntil(() => running.listener.stats().admission.backlog === 15, () => `15 in the backlog (${JSON.stringify(running.listener.stats().admission)})`);
    expect(running.listener.stats().admission.pausedFor).to.equal('maxPendingHandshakes');

    // Each stall times out, which frees its slot for the next client in the backlog.
    await waitUntil(() => running.listener.stats().handshakes.timedOut + running.listener.stats().handshakes.failed === 20, () => JSON.stringify(running.listener.stats().handshakes), 15_000);
    await waitUntil(() => stalling.every((c) => c.closed), 'every stalling client closed by the server');
    expect(watch.stop(), 'connections in setup at once at most').to.equal(5);
    expect(stalling.filter((c) => c.error !== null).map((c) => c.error?.code), 'clients reset').to.deep.equal([]);
    const stats = running.listener.stats();
    expect(stats.accepted).to.equal(20);
    expect(stats.rejected.maxPendingHandshakes).to.equal(0);
    expect(backpressure[0]).to.deep.equal([true, 'maxPendingHandshakes']);
    expect(stats.admission.pauses).to.be.at.least(1);
    expectBalanced(running.listener);
  });

  it('native backend: a completed handshake frees its slot while the connection stays open', async function () {
    this.timeout(20_000);
    const running = await startListener(
      cleanup,
      { backend: 'native', credential: { cert: pki.server.cert, key: pki.server.key }, maxPendingHandshakes: 1 },
      (socket) => {
        socket.write('served\n');
      },
    );
    for (let i = 0; i < 3; i++) {
      const client = tlsConnect(cleanup, running.port, { rejectUnauthorized: false });
      expect(await client.line(0)).to.equal('served');
    }
    expect(running.listener.stats().active).to.equal(3);
  });
});

describe('maxConnectionsPerAddress: over the limit a connection is closed at accept, counted per reason', () => {
  const cleanup = useCleanup();
  for (const backend of backends) {
    it(`${backend} backend: the 11th connection from 127.0.0.1 is rejected while ::1 is still served; a slot freed is reused`, async function () {
      this.timeout(15_000);
      if (!(await canBind(0, '::1'))) this.skip();
      // The IPv6 wildcard: IPv4 clients arrive IPv4-mapped and count as their IPv4 address.
      const { listener, port } = await tcpListener(cleanup, { backend, host: '::', maxConnectionsPerAddress: 10 });
      const clients: Client[] = [];
      cleanup.add(() => clients.forEach((c) => c.destroy()));
      for (let i = 0; i < 10; i++) {
        const client = await connect(port, '127.0.0.1');
        clients.push(client);
        expect(await client.line(0)).to.match(/^hello \d+$/);
      }
      const eleventh = await connect(port, '127.0.0.1');
      cleanup.add(() => eleventh.destroy());
      await eleventh.whenClosed();
      expect(eleventh.received, 'the rejected client got nothing').to.equal('');
      expect(listener.stats().rejected.maxConnectionsPerAddress).to.equal(1);

      const ipv6 = await connect(port, '::1');
      cleanup.add(() => ipv6.destroy());
      expect(await ipv6.line(0)).to.match(/^hello \d+$/);

      clients[0]?.socket.end();
      await waitUntil(() => listener.stats().active === 10, 'the first connection released');
      const again = await connect(port, '127.0.0.1');
      cleanup.add(() => again.destroy());
      expect(await again.line(0), 'the freed slot serves 127.0.0.1 again').to.match(/^hello \d+$/);
      const stats = listener.stats();
      expect({ accepted: stats.accepted, rejected: stats.rejected.maxConnectionsPerAddress, leaked: stats.leaked }).to.deep.equal({
        accepted: 12,
        rejected: 1,
        leaked: 0,
      });
      expect(listener.metrics()).to.include('native_tls_listener_connections_rejected_total{reason="maxConnectionsPerAddress"} 1');
    });
  }
});

describe('deferAccept: a silent connection is not accepted until it speaks', () => {
  const cleanup = useCleanup();
  for (const backend of backends) {
    it(`${backend} backend: connected and silent, it is not counted; its first byte gets it accepted`, async function () {
      if (process.platform !== 'linux') this.skip();
      this.timeout(10_000);
      const { listener, port } = await tcpListener(cleanup, { backend, deferAccept: 5 });
      const silent = await connect(port);
      cleanup.add(() => silent.destroy());
      // The client's connect() completed; the server has nothing to accept yet.
      await delay(300);
      expect(listener.stats().accepted, 'accepted while silent').to.equal(0);
      silent.socket.write('x');
      await waitUntil(() => listener.stats().accepted === 1, 'the connection accepted once it spoke');
      expect(await silent.line(0)).to.match(/^hello \d+$/);
    });
  }
});

describe('admission options are validated', () => {
  for (const [option, value] of [
    ['maxConnections', 0],
    ['maxConnections', 1.5],
    ['maxConnectionsPerAddress', -1],
    ['perAddressIPv6Prefix', 0],
    ['perAddressIPv6Prefix', 129],
    ['perAddressIPv6Prefix', 64.5],
    ['deferAccept', 3601],
    ['deferAccept', '5'],
  ] as const) {
    it(`createLocalTCPListener({ ${option}: ${JSON.stringify(value)} }) throws ERR_INVALID_OPTION`, () => {
      expect(() => createLocalTCPListener({ port: 0, [option]: value }, () => undefined))
        .to.throw()
        .with.property('code', ErrorCodes.INVALID_OPTION);
    });
  }
  it('createLocalTCPListener refuses maxPendingHandshakes: a plain TCP listener has no handshake', () => {
    expect(() => createLocalTCPListener({ port: 0, ...{ maxPendingHandshakes: 5 } }, () => undefined))
      .to.throw()
      .with.property('code', ErrorCodes.INVALID_OPTION);
  });
});
