// The connection registry on real loopback sockets: the leak figure and audit() under an
// injected fault (a descriptor lost between accept and registration), the same path without
// the fault, close() with hundreds of TLS connections, graceful close, and the idle timeout.
import fs from 'node:fs';
import type net from 'node:net';
import type tls from 'node:tls';
import { expect } from 'chai';
import { adoptDescriptor, TCPListener } from '../src/index.js';
import type {
  CodedError,
  DescriptorAdopter,
  ListenerOptions,
  ListenerStats,
  WorkersListenerStats,
} from '../src/index.js';
import { backendModes, ModeHarness } from './support/listener_modes.js';
import type { HandlerFactory } from './support/listener_modes.js';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import {
  Cleanup,
  delay,
  descriptorsOnPort,
  inodeOpen,
  inWindow,
  openDescriptors,
  socketInodeOf,
  tcpPeer,
  tlsPeer,
  waitForFdCount,
  waitUntil,
  within,
} from './support/registry_support.js';
import type { Peer } from './support/registry_support.js';

function book(stats: ListenerStats): Pick<ListenerStats, 'accepted' | 'closed' | 'active' | 'leaked'> {
  return { accepted: stats.accepted, closed: stats.closed, active: stats.active, leaked: stats.leaked };
}

/** A handler that keeps the connection until its peer (or the listener) closes it. */
function holdOpen(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/** holdOpen, for a listener in either mode (self-contained: its source runs in the workers). */
const holdOpenHandler: HandlerFactory = () => (socket) => new Promise<void>((resolve) => socket.once('close', () => resolve()));

let pki: TestPki;
before(async function () {
  this.timeout(60_000);
  pki = await createTestPki();
});

function tlsOptions(backend: 'native' | 'js', extra: Partial<ListenerOptions> = {}): ListenerOptions {
  return { port: 0, host: '127.0.0.1', backend, credential: { cert: pki.server.cert, key: pki.server.key }, ...extra };
}

// One thread only: the seam is an adopter function on the main thread, which a worker (it
// wraps its descriptors itself, in its own thread) cannot be given.
describe('fault seam: a descriptor lost between accept and registration is counted leaked and found by audit()', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('native backend: an adopter that keeps the 3rd descriptor gives leaked === 1 and audit().untracked === [that fd]', async () => {
    let adopted = 0;
    let forgotten = -1;
    // The fault: the adopter takes the descriptor and returns null ("taken, not wrapped"), so
    // the listener neither tracks nor closes it. This test is its new owner and closes it last.
    const forgetThird: DescriptorAdopter = (fd) => {
      adopted++;
      if (adopted !== 3) return adoptDescriptor(fd);
      forgotten = fd;
      cleanup.add(() => {
        if (socketInodeOf(fd) !== undefined) fs.closeSync(fd);
      });
      return null;
    };
    const listener = new TCPListener({ port: 0, host: '127.0.0.1', backend: 'native' }, holdOpen, { adoptDescriptor: forgetThird });
    cleanup.add(() => listener.close());
    const { port } = await listener.listen();
    const peers: Peer[] = [];
    for (let i = 0; i < 5; i++) {
      const peer = await tcpPeer(port);
      cleanup.add(() => peer.destroy());
      peers.push(peer);
      await waitUntil(() => listener.stats().accepted === i + 1, `connection ${i + 1} to be accepted`);
    }
    await waitUntil(() => listener.stats().active === 4, 'four connections to be registered');

    expect(forgotten, 'the adopter saw a 3rd descriptor').to.be.greaterThan(-1);
    expect(book(listener.stats())).to.deep.equal({ accepted: 5, closed: 0, active: 4, leaked: 1 });
    const audit = listener.audit();
    expect(audit).to.deep.equal({ tracked: 4, closedButTracked: [], untracked: [forgotten] });
    expect(listener.metrics()).to.match(/^native_tls_listener_connections_leaked 1$/m);

    // Its new owner closes it: nothing untracked is left open, but the loss stays on the books.
    fs.closeSync(forgotten);
    expect(listener.audit()).to.deep.equal({ tracked: 4, closedButTracked: [], untracked: [] });
    expect(listener.stats().leaked).to.equal(1);

    await within(listener.close(), 'close() with a forgotten descriptor on the books');
    expect(book(listener.stats())).to.deep.equal({ accepted: 5, closed: 4, active: 0, leaked: 1 });
    expect(descriptorsOnPort(port)).to.deep.equal([]);
  });

  it('native backend: an adopter that throws does not lose the descriptor: the listener closes it and counts it closed', async () => {
    let adopted = 0;
    let failedInode: string | undefined;
    const throwOnSecond: DescriptorAdopter = (fd) => {
      adopted++;
      if (adopted !== 2) return adoptDescriptor(fd);
      failedInode = socketInodeOf(fd);
      throw new Error('wrapping failed on purpose');
    };
    const listener = new TCPListener({ port: 0, host: '127.0.0.1', backend: 'native' }, holdOpen, { adoptDescriptor: throwOnSecond });
    cleanup.add(() => listener.close());
    const errors: Array<{ error: CodedError; info: { id: number } }> = [];
    listener.on('connectionError', (error: CodedError, info: { id: number }) => errors.push({ error, info }));
    const { port } = await listener.listen();

    const peers: Peer[] = [];
    for (let i = 0; i < 3; i++) {
      const peer = await tcpPeer(port);
      cleanup.add(() => peer.destroy());
      peers.push(peer);
      await waitUntil(() => listener.stats().accepted === i + 1, `connection ${i + 1} to be accepted`);
    }
    const [, second] = peers;
    await second?.closedWithin();
    expect(failedInode, 'the adopter saw the 2nd descriptor').to.be.a('string');
    expect(inodeOpen(failedInode ?? ''), 'the failed descriptor is still open').to.equal(false);
    expect(errors.map(({ error, info }) => ({ code: error.code, id: info.id }))).to.deep.equal([
      { code: 'ERR_CONNECTION_SETUP_FAILED', id: 2 },
    ]);
    await waitUntil(() => listener.stats().active === 2, 'two connections to be registered');
    expect(book(listener.stats())).to.deep.equal({ accepted: 3, closed: 1, active: 2, leaked: 0 });
    expect(listener.audit()).to.deep.equal({ tracked: 2, closedButTracked: [], untracked: [] });
    await within(listener.close(), 'close()');
    expect(book(listener.stats())).to.deep.equal({ accepted: 3, closed: 3, active: 0, leaked: 0 });
  });

  it('js backend: net.Server wraps its own connections, so the adopter is never consulted and nothing leaks', async () => {
    let consulted = 0;
    const listener = new TCPListener({ port: 0, host: '127.0.0.1', backend: 'js' }, holdOpen, {
      adoptDescriptor: () => {
        consulted++;
        return null;
      },
    });
    cleanup.add(() => listener.close());
    const { port } = await listener.listen();
    for (let i = 0; i < 3; i++) {
      const peer = await tcpPeer(port);
      cleanup.add(() => peer.destroy());
    }
    await waitUntil(() => listener.stats().active === 3, 'three connections to be registered');
    expect(consulted).to.equal(0);
    expect(book(listener.stats())).to.deep.equal({ accepted: 3, closed: 0, active: 3, leaked: 0 });
    expect(listener.audit()).to.deep.equal({ tracked: 3, closedButTracked: [], untracked: [] });
  });
});

describe('close() with hundreds of active TLS connections: resolves, releases every descriptor, frees the port', () => {
  const COUNT = 300;
  for (const { backend, mode, label } of backendModes) {
    describe(label, () => {
      const cleanup = new Cleanup();
      const harness = new ModeHarness(mode);
      afterEach(() => cleanup.run());
      after(() => harness.close());

      it(`closes ${COUNT} TLS connections in the handler, and a new listener binds the port at once`, async function () {
        this.timeout(120_000);
        // Warm-up: what a process opens once, on first use (with workers, a worker's first start), is open before the baseline.
        const warm = harness.tls(tlsOptions(backend), holdOpenHandler);
        await warm.listen();
        await within(warm.close(), 'the warm-up listener to close');
        const baseline = openDescriptors();
        const listener = harness.tls(tlsOptions(backend), holdOpenHandler);
        cleanup.add(() => listener.close());
        const { port } = await listener.listen();
        const peers: Array<Peer<tls.TLSSocket>> = [];
        await inWindow(COUNT, 32, async () => {
          const peer = await tlsPeer(port, { ca: pki.ca.cert });
          cleanup.add(() => peer.destroy());
          peers.push(peer);
        });
        await waitUntil(() => listener.stats().handshakes.completed === COUNT, `${COUNT} handshakes to complete`);
        expect(book(listener.stats())).to.deep.equal({ accepted: COUNT, closed: 0, active: COUNT, leaked: 0 });
        expect(descriptorsOnPort(port, 'connections')).to.have.length(COUNT);

        const closing = listener.close();
        // The listening socket is closed by close() itself: the port is free before it resolves.
        const successor = harness.tls(tlsOptions(backend, { port }), holdOpenHandler);
        cleanup.add(() => successor.close());
        expect((await successor.listen()).port).to.equal(port);
        await within(closing, `close() with ${COUNT} active connections`);

        expect(book(listener.stats())).to.deep.equal({ accepted: COUNT, closed: COUNT, active: 0, leaked: 0 });
        expect(descriptorsOnPort(port, 'connections'), 'server-side descriptors left open').to.deep.equal([]);
        expect(await listener.audit()).to.deep.equal({ tracked: 0, closedButTracked: [], untracked: [] });
        await within(Promise.all(peers.map((peer) => peer.closing)), 'every client to see its connection close');

        await within(successor.close(), 'the successor to close');
        expect(descriptorsOnPort(port)).to.deep.equal([]);
        await waitForFdCount(baseline);
      });
    });
  }
});

describe('close({ gracefulTimeout }): ends connections, lets peers finish, destroys the ones that do not close in time', () => {
  for (const { backend, mode, label } of backendModes) {
    describe(label, () => {
      const cleanup = new Cleanup();
      const harness = new ModeHarness(mode);
      afterEach(() => cleanup.run());
      after(() => harness.close());

      it('cooperating clients get end and answer; stubborn ones are destroyed at the deadline; handshakes in progress at once', async function () {
        this.timeout(60_000);
        const COOPERATIVE = 20;
        const STUBBORN = 5;
        const GRACE_MS = 2000;
        // Each connection tells what it read, keyed by thread and id (ids count per worker).
        const listener = harness.tls(tlsOptions(backend), ({ tell, thread }) => (socket, info) => {
          const key = `${thread}:${info.id}`;
          tell({ key, chunk: '' });
          socket.setEncoding('utf8');
          socket.on('data', (chunk: string) => tell({ key, chunk }));
          return new Promise<void>((resolve) => socket.once('close', () => resolve()));
        });
        const heard = (): Map<string, string> => {
          const words = new Map<string, string>();
          for (const { key, chunk } of harness.messages as Array<{ key: string; chunk: string }>) words.set(key, (words.get(key) ?? '') + chunk);
          return words;
        };
        cleanup.add(() => listener.close());
        const { port } = await listener.listen();

        const cooperative: Array<Peer<tls.TLSSocket>> = [];
        for (let i = 0; i < COOPERATIVE; i++) {
          const peer = await tlsPeer(port, { ca: pki.ca.cert });
          cleanup.add(() => peer.destroy());
          // Answers the server's end with a last word, then ends its side too.
          peer.socket.once('end', () => peer.socket.end('bye\n'));
          cooperative.push(peer);
        }
        const stubborn: Array<Peer<tls.TLSSocket>> = [];
        for (let i = 0; i < STUBBORN; i++) {
          const peer = await tlsPeer(port, { ca: pki.ca.cert });
          cleanup.add(() => peer.destroy());
          // Keeps its side open after the server's end, so only the server's destroy() ends it.
          peer.socket.allowHalfOpen = true;
          stubborn.push(peer);
        }
        // A client still in the TLS setup: closed at once, not given the grace period.
        const handshaking = await tcpPeer(port);
        cleanup.add(() => handshaking.destroy());
        const total = COOPERATIVE + STUBBORN + 1;
        await waitUntil(() => listener.stats().active === total && heard().size === COOPERATIVE + STUBBORN, 'every connection to be served');

        const closing = listener.close({ gracefulTimeout: GRACE_MS });
        let closed = false;
        void closing.then(() => {
          closed = true;
        });
        await handshaking.closedWithin();
        await within(Promise.all(cooperative.map((peer) => peer.closing)), 'the cooperating clients to close');
        // With workers, a worker counts its closes and tells what it read on its own thread,
        // which reach this one a moment later: give them that moment, well within the grace.
        const lastWords = (): number => [...heard().values()].filter((word) => word === 'bye\n').length;
        await waitUntil(
          () => listener.stats().active === STUBBORN && lastWords() === COOPERATIVE,
          () => `only the stubborn connections to stay open (active ${listener.stats().active}), and every last word read (${lastWords()})`,
          GRACE_MS / 2,
        );
        expect(closed, 'close() resolved while stubborn clients still had their grace period').to.equal(false);
        for (const peer of [...cooperative, ...stubborn]) expect(peer.ended, 'a client got end').to.equal(true);
        for (const peer of cooperative) expect(peer.error, 'a cooperating client saw an error').to.equal(null);

        await within(closing, 'close() to resolve after the grace period', GRACE_MS + 10_000);
        expect(book(listener.stats())).to.deep.equal({ accepted: total, closed: total, active: 0, leaked: 0 });
        expect(descriptorsOnPort(port), 'server-side descriptors left open').to.deep.equal([]);
        // The server let go of them: they never closed their side.
        for (const peer of stubborn) expect(peer.closed, 'a stubborn client closed by itself').to.equal(false);
      });
    });
  }
});

describe('close() called twice, or again after it resolved, is harmless', () => {
  for (const { backend, mode, label } of backendModes) {
    describe(label, () => {
      const cleanup = new Cleanup();
      const harness = new ModeHarness(mode);
      afterEach(() => cleanup.run());
      after(() => harness.close());

      it('returns the same promise, emits close once, and later calls resolve at once', async () => {
        const listener = harness.tls(tlsOptions(backend), holdOpenHandler);
        cleanup.add(() => listener.close());
        let closeEvents = 0;
        listener.on('close', () => closeEvents++);
        const { port } = await listener.listen();
        const peers = await Promise.all(Array.from({ length: 5 }, () => tlsPeer(port, { ca: pki.ca.cert })));
        for (const peer of peers) cleanup.add(() => peer.destroy());
        await waitUntil(() => listener.stats().active === 5, 'five connections to be served');

        const first = listener.close();
        const second = listener.close({ gracefulTimeout: 10_000 });
        expect(second).to.equal(first);
        await within(Promise.all([first, second]), 'both close() calls to resolve');
        await within(listener.close(), 'a third close() after the listener closed');
        await delay(20);
        expect(closeEvents).to.equal(1);
        expect(book(listener.stats())).to.deep.equal({ accepted: 5, closed: 5, active: 0, leaked: 0 });
        expect(listener.address()).to.equal(null);
      });
    });
  }
});

describe('close() with handshakes in progress: each is counted aborted, none reported as a client failure', () => {
  for (const { backend, mode, label } of backendModes) {
    describe(label, () => {
      const cleanup = new Cleanup();
      const harness = new ModeHarness(mode);
      afterEach(() => cleanup.run());
      after(() => harness.close());

      it('2 served and 4 silent clients: close() ends the 4 setups as aborted, even those still queued for a busy worker', async function () {
        this.timeout(30_000);
        // With workers: a served client that sends 'block' arms its worker to stay busy for a
        // while inside the next hand-off (its diagnostics_channel 'accept' message), so the
        // connection after that one waits in the worker's queue when close() comes. On one
        // thread nothing queues: no block.
        const listener = harness.tls(tlsOptions(backend), ({ tell, thread }) => {
          let armed = false;
          if (thread !== 0) {
            void import('node:diagnostics_channel').then((dc) =>
              dc.subscribe('native-tls-listener:accept', () => {
                if (!armed) return;
                armed = false;
                tell('blocking');
                const until = Date.now() + 3000;
                while (Date.now() < until) {
                  // busy inside the hand-off: this worker takes nothing more from its queue meanwhile
                }
              }),
            );
          }
          return (socket) => {
            socket.on('data', (chunk: Buffer) => {
              if (chunk.toString().includes('block')) {
                armed = true;
                tell('armed');
              }
            });
            socket.write('hi\n');
            return new Promise<void>((resolve) => socket.once('close', () => resolve()));
          };
        });
        cleanup.add(() => listener.close());
        const clientErrors: unknown[] = [];
        listener.on('tlsClientError', (error) => clientErrors.push(error));
        const { port } = await listener.listen();
        const served = [await tlsPeer(port, { ca: pki.ca.cert }), await tlsPeer(port, { ca: pki.ca.cert })];
        for (const peer of served) cleanup.add(() => peer.destroy());
        await waitUntil(() => listener.stats().handshakes.completed === 2, 'two handshakes to complete');
        const told = (what: string): number => harness.messages.filter((m) => m === what).length;
        if (mode === 'workers') {
          for (const peer of served) peer.socket.write('block\n');
          await waitUntil(() => told('armed') === 2, 'both workers to be armed');
        }
        const silent: Peer[] = [];
        for (let i = 0; i < 4; i++) {
          const peer = await tcpPeer(port);
          cleanup.add(() => peer.destroy());
          silent.push(peer);
          if (mode === 'workers' && i === 1) await waitUntil(() => told('blocking') === 2, 'both workers to be busy in a hand-off');
        }
        const queued = (): number => ((listener.stats() as Partial<WorkersListenerStats>).workers ?? []).reduce((sum, w) => sum + w.queued, 0);
        // Each busy worker: one connection in its hand-off, and the next one waiting behind it.
        if (mode === 'workers') await waitUntil(() => queued() === 4, () => `4 connections queued for the busy workers (${queued()})`);
        else await waitUntil(() => listener.stats().active === 6, 'six connections');

        await within(listener.close(), 'close()');
        await delay(20);
        expect(clientErrors, 'tlsClientError for a setup close() cut short').to.deep.equal([]);
        const stats = listener.stats();
        expect(book(stats)).to.deep.equal({ accepted: 6, closed: 6, active: 0, leaked: 0 });
        expect(stats.handshakes).to.deep.equal({ completed: 2, failed: 0, timedOut: 0, aborted: 4 });
      });
    });
  }
});

describe('idleTimeout: a connection without traffic for idleTimeout ms is closed and counted', () => {
  const IDLE_MS = 400;
  for (const { backend, mode, label } of backendModes) {
    describe(label, () => {
      const cleanup = new Cleanup();
      const harness = new ModeHarness(mode);
      afterEach(() => cleanup.run());
      after(() => harness.close());

      it('TLS: closes a silent connection, keeps a chatty one (traffic through the TLS layer counts), then closes it once silent', async function () {
        this.timeout(30_000);
        const listener = harness.tls(tlsOptions(backend, { idleTimeout: IDLE_MS }), () => (socket) => {
          socket.on('data', (chunk: Buffer) => socket.write(chunk));
          return new Promise<void>((resolve) => socket.once('close', () => resolve()));
        });
        cleanup.add(() => listener.close());
        const { port } = await listener.listen();

        const silent = await tlsPeer(port, { ca: pki.ca.cert });
        cleanup.add(() => silent.destroy());
        const chatty = await tlsPeer(port, { ca: pki.ca.cert });
        cleanup.add(() => chatty.destroy());
        // Talks every IDLE_MS / 4 for 4 idle periods: never idle for long enough.
        for (let i = 0; i < 16 && !chatty.closed; i++) {
          chatty.socket.write(`ping ${i}\n`);
          await delay(IDLE_MS / 4);
        }
        expect(chatty.closed, 'the chatty connection was closed as idle').to.equal(false);
        expect(chatty.received).to.contain('ping 15\n');
        await silent.closedWithin();
        expect(listener.stats().idleTimeouts).to.equal(1);

        await chatty.closedWithin();
        await waitUntil(() => listener.stats().closed === 2, 'both connections to be counted closed');
        const stats = listener.stats();
        expect(stats.idleTimeouts).to.equal(2);
        expect(book(stats)).to.deep.equal({ accepted: 2, closed: 2, active: 0, leaked: 0 });
        expect(stats.handshakes).to.deep.equal({ completed: 2, failed: 0, timedOut: 0, aborted: 0 });
      });

      it('TLS: a client silent during the handshake is closed by the idle timeout, long before the handshake timeout', async () => {
        const listener = harness.tls(tlsOptions(backend, { idleTimeout: IDLE_MS, handshakeTimeout: 60_000 }), holdOpenHandler);
        cleanup.add(() => listener.close());
        const { port } = await listener.listen();
        const peer = await tcpPeer(port);
        cleanup.add(() => peer.destroy());
        await peer.closedWithin(IDLE_MS + 5000);
        await waitUntil(() => listener.stats().closed === 1, 'the connection to be counted closed');
        const stats = listener.stats();
        expect(stats.idleTimeouts).to.equal(1);
        expect(stats.handshakes.timedOut).to.equal(0);
        expect(book(stats)).to.deep.equal({ accepted: 1, closed: 1, active: 0, leaked: 0 });
      });

      it('TCP: closes a silent connection and keeps one that keeps talking', async function () {
        this.timeout(30_000);
        const listener = harness.tcp({ port: 0, host: '127.0.0.1', backend, idleTimeout: IDLE_MS }, () => (socket, info) => {
          socket.on('data', (chunk: Buffer) => socket.write(chunk));
          socket.write(`${info.id}\n`);
          return new Promise<void>((resolve) => socket.once('close', () => resolve()));
        });
        cleanup.add(() => listener.close());
        const { port } = await listener.listen();
        const silent = await tcpPeer(port);
        cleanup.add(() => silent.destroy());
        const chatty = await tcpPeer(port);
        cleanup.add(() => chatty.destroy());
        for (let i = 0; i < 12 && !chatty.closed; i++) {
          chatty.socket.write(`ping ${i}\n`);
          await delay(IDLE_MS / 4);
        }
        expect(chatty.closed, 'the chatty connection was closed as idle').to.equal(false);
        await silent.closedWithin();
        expect(listener.stats().idleTimeouts).to.equal(1);
        chatty.destroy();
        await waitUntil(() => listener.stats().closed === 2, 'both connections to be counted closed');
        expect(listener.stats().idleTimeouts).to.equal(1);
        expect(book(listener.stats())).to.deep.equal({ accepted: 2, closed: 2, active: 0, leaked: 0 });
      });
    });
  }
});

describe("a plain TCP handler's own 'close' listener runs once its connection is released", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  for (const backend of ['native', 'js'] as const) {
    it(`${backend} backend: stats() read there counts the connection closed, not active`, async () => {
      const seen: Array<{ active: number; closed: number }> = [];
      const listener = new TCPListener({ port: 0, host: '127.0.0.1', backend }, (socket) => {
        socket.on('close', () => {
          const { active, closed } = listener.stats();
          seen.push({ active, closed });
        });
      });
      cleanup.add(() => listener.close());
      const { port } = await listener.listen();
      const peer = await tcpPeer(port);
      await waitUntil(() => listener.stats().active === 1, 'the connection to be served');
      peer.destroy();
      await waitUntil(() => seen.length === 1, "the handler's 'close' listener to run");
      expect(seen).to.deep.equal([{ active: 0, closed: 1 }]);
    });
  }
});
