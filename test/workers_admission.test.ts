// Admission limits with `workers`: maxConnections and maxPendingHandshakes hold for the listener
// as a whole. The accept thread stops taking connections at the limit, from the books every
// worker publishes, and the kernel's backlog holds the next clients: none is reset. The accept
// thread closes a connection over maxConnectionsPerAddress right after accept (the workers
// count it out when they release it), and deferAccept keeps silent connections in the kernel.
import net from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import { createListener, createLocalTCPListener } from '../src/index.js';
import type { WorkersListener } from '../src/index.js';
import type { WorkersHandlerConfig } from './fixtures/workers_handler.js';
import { compiledFixture } from './support/paths.js';
import { createTestPki } from './support/pki.js';
import { canBind, Cleanup, connect, delay, waitUntil, within } from './support/sockets.js';
import { tlsConnect } from './support/tls_harness.js';
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

describe('workers: maxConnectionsPerAddress holds for the listener as a whole', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('maxConnectionsPerAddress 10 with 2 workers: the 11th connection from 127.0.0.1 is closed at accept while ::1 is served; a slot freed is reused', async function () {
    this.timeout(30_000);
    if (!(await canBind(0, '::1'))) this.skip();
    // The IPv6 wildcard: IPv4 clients arrive IPv4-mapped and count as their IPv4 address.
    const listener: WorkersListener = createLocalTCPListener({
      port: 0,
      host: '::',
      maxConnectionsPerAddress: 10,
      workers: { count: 2, module: handlerModule, workerData: { mode: 'hold' } satisfies WorkersHandlerConfig },
    });
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the workers to start', 10_000);
    const clients: Client[] = [];
    cleanup.add(() => clients.forEach((c) => c.destroy()));
    for (let i = 0; i < 10; i++) {
      const client = await connect(port, '127.0.0.1');
      clients.push(client);
      expect(await client.line(0)).to.match(/^\d+ \d+$/);
    }
    expect(new Set(listener.stats().workers.map((w) => w.active)), 'the ten are spread over both workers').to.deep.equal(new Set([5]));
    const eleventh = await connect(port, '127.0.0.1');
    cleanup.add(() => eleventh.destroy());
    await eleventh.whenClosed();
    expect(eleventh.received, 'the rejected client got nothing').to.equal('');
    // The accept thread adds its batch's rejections to the books after closing them.
    await waitUntil(() => listener.stats().rejected.maxConnectionsPerAddress === 1, 'the rejection to be counted');

    const ipv6 = await connect(port, '::1');
    cleanup.add(() => ipv6.destroy());
    expect(await ipv6.line(0)).to.match(/^\d+ \d+$/);

    clients[0]?.socket.end();
    await waitUntil(() => listener.stats().active === 10, 'the first connection released');
    const again = await connect(port, '127.0.0.1');
    cleanup.add(() => again.destroy());
    expect(await again.line(0), 'the freed slot serves 127.0.0.1 again').to.match(/^\d+ \d+$/);
    const stats = listener.stats();
    expect({ accepted: stats.accepted, rejected: stats.rejected.maxConnectionsPerAddress, leaked: stats.leaked }).to.deep.equal({
      accepted: 12,
      rejected: 1,
      leaked: 0,
    });
    expect(listener.metrics()).to.include('native_tls_listener_connections_rejected_total{reason="maxConnectionsPerAddress"} 1');
  });

  it('connections a worker held when it died are counted out: its replacement serves the address again', async function () {
    this.timeout(30_000);
    const listener: WorkersListener = createLocalTCPListener({
      port: 0,
      maxConnectionsPerAddress: 4,
      workers: { count: 1, module: handlerModule, workerData: { mode: 'hold' } satisfies WorkersHandlerConfig },
    });
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the worker to start', 10_000);
    const clients: Client[] = [];
    cleanup.add(() => clients.forEach((c) => c.destroy()));
    for (let i = 0; i < 4; i++) {
      const client = await connect(port, '127.0.0.1');
      clients.push(client);
      await client.line(0);
    }
    const exited = new Promise<void>((resolve) => listener.once('worker', (event: { type: string }) => event.type === 'exit' && resolve()));
    const online = new Promise<void>((resolve) => listener.on('worker', (event: { type: string }) => event.type === 'online' && resolve()));
    // The handler module throws on 'crash': the worker dies holding its four connections.
    clients[0]?.socket.write('crash');
    await within(exited, 'the worker to die', 10_000);
    await within(online, 'its replacement', 10_000);
    const after = await connect(port, '127.0.0.1');
    cleanup.add(() => after.destroy());
    expect(await after.line(0), 'served by the replacement').to.match(/^\d+ \d+$/);
    expect(listener.stats().rejected.maxConnectionsPerAddress).to.equal(0);
  });
});

describe('workers: deferAccept keeps silent connections in the kernel', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('deferAccept 30 with 2 workers: silent connections are not accepted until they speak; a TLS client is served', async function () {
    if (process.platform !== 'linux') this.skip();
    this.timeout(30_000);
    const pki = await createTestPki();
    const listener: WorkersListener = createListener({
      port: 0,
      host: '127.0.0.1',
      credential: pki.server,
      // Long enough that no SYN-ACK retransmission lets a silent client in during the test.
      deferAccept: 30,
      workers: { count: 2, module: handlerModule, workerData: { mode: 'greet' } satisfies WorkersHandlerConfig },
    });
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the workers to start', 10_000);
    const silent: Client[] = [];
    for (let i = 0; i < 5; i++) {
      const client = await connect(port, '127.0.0.1');
      cleanup.add(() => client.destroy());
      silent.push(client);
    }
    const speaking = tlsConnect(cleanup, port);
    await within(speaking.closing, 'the TLS client to be served', 10_000);
    expect(speaking.secure, speaking.error?.message).to.equal(true);
    expect(speaking.received).to.match(/^\d+ \d+\n$/);
    await delay(300);
    expect(listener.stats().accepted, 'only the TLS client, not the five silent ones').to.equal(1);
    silent[0]?.socket.write('x');
    await waitUntil(() => listener.stats().accepted === 2, () => `the one that spoke accepted (${listener.stats().accepted})`);
  });
});
