// The plain-TCP listener on real loopback sockets, on both accept backends: serving clients,
// choosing the address, resolving ports, adopting a descriptor, closing, close-on-exec.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type net from 'node:net';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { TCPListener, createLocalTCPListener } from '../src/index.js';
import type { CloseOptions, Handler, ListenerStats, TCPConnectionInfo, TCPListenerOptions } from '../src/index.js';
import { ChildListener, GracefulCloseChild, INHERITED_FD } from './support/child_listener.js';
import {
  O_CLOEXEC,
  descriptorCount,
  listeningSocketInode,
  parseSocketLinks,
  socketInode,
  socketInodes,
} from './support/proc.js';
import {
  Cleanup,
  canBind,
  closeServer,
  connect,
  connectOutcome,
  handleFd,
  listeningServer,
  waitUntil,
  within,
} from './support/sockets.js';
import type { Client } from './support/sockets.js';
import { backendModes, ModeHarness } from './support/listener_modes.js';
import { descriptorsOnPort } from './support/registry_support.js';

const execFileAsync = promisify(execFile);
const backends = ['native', 'js'] as const;

type TCPHandler = Handler<net.Socket, TCPConnectionInfo>;

async function open(
  cleanup: Cleanup,
  options: TCPListenerOptions,
  handler: TCPHandler,
): Promise<{ listener: TCPListener; address: net.AddressInfo }> {
  const listener = new TCPListener(options, handler);
  cleanup.add(() => listener.close());
  const address = await listener.listen();
  return { listener, address };
}

async function client(cleanup: Cleanup, port: number, host = '127.0.0.1'): Promise<Client> {
  const connected = await connect(port, host);
  cleanup.add(() => connected.destroy());
  return connected;
}

function book(stats: ListenerStats): Pick<ListenerStats, 'accepted' | 'closed' | 'active' | 'leaked'> {
  return { accepted: stats.accepted, closed: stats.closed, active: stats.active, leaked: stats.leaked };
}

/** The error a listener fails with, whether its constructor throws or listen() rejects. */
async function listenFailure(options: TCPListenerOptions, cleanup: Cleanup): Promise<NodeJS.ErrnoException> {
  try {
    const listener = new TCPListener(options, () => undefined);
    cleanup.add(() => listener.close());
    await listener.listen();
  } catch (error) {
    return error as NodeJS.ErrnoException;
  }
  throw new Error(`listening with ${JSON.stringify(options)} succeeded`);
}

/** A child listener that adopts `server`'s listening descriptor as INHERITED_FD. */
function adoptingChild(backend: (typeof backends)[number], server: net.Server): ChildListener {
  const inherit = { fd: handleFd(server), childFd: INHERITED_FD };
  return ChildListener.start({ backend, fd: INHERITED_FD, mode: 'serve' }, { inherit });
}

/** Resolves when the server side of a connection has released its descriptor. */
function serverClosed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

describe('serving clients: connection ids, handler promises and the connection book', () => {
  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      it('numbers connections 1, 2, 3 in accept order and counts each closed once its client is done', async () => {
        const closing: Array<Promise<void>> = [];
        const { listener, address } = await open(cleanup, { port: 0, host: '127.0.0.1', backend }, (socket, { id }) => {
          closing.push(serverClosed(socket));
          socket.end(`${id}\n`);
        });
        const ids: number[] = [];
        for (let i = 0; i < 3; i++) {
          const c = await client(cleanup, address.port);
          ids.push(Number(await c.line()));
          await c.whenClosed();
        }
        expect(ids).to.deep.equal([1, 2, 3]);
        await within(Promise.all(closing), 'the server side of every connection to close');
        expect(book(listener.stats())).to.deep.equal({ accepted: 3, closed: 3, active: 0, leaked: 0 });
      });

      it('gives concurrent clients the ids 1..N, each once', async () => {
        const closing: Array<Promise<void>> = [];
        const { listener, address } = await open(cleanup, { port: 0, host: '127.0.0.1', backend }, (socket, { id }) => {
          closing.push(serverClosed(socket));
          socket.end(`${id}\n`);
        });
        const clients = await Promise.all(Array.from({ length: 20 }, () => client(cleanup, address.port)));
        const ids = await Promise.all(clients.map(async (c) => Number(await c.line())));
        expect([...ids].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
        await within(Promise.all(closing), 'the server side of every connection to close');
        expect(book(listener.stats())).to.deep.equal({ accepted: 20, closed: 20, active: 0, leaked: 0 });
      });

      it("keeps a connection open while the handler's promise is pending, then ends it", async () => {
        let settle: () => void = () => undefined;
        let settled = false;
        const closing: Array<Promise<void>> = [];
        const { listener, address } = await open(cleanup, { port: 0, host: '127.0.0.1', backend }, (socket) => {
          closing.push(serverClosed(socket));
          socket.on('data', (chunk: Buffer) => socket.write(`echo ${chunk.toString()}`));
          socket.write('hello\n');
          return new Promise<void>((resolve) => {
            settle = resolve;
          });
        });
        const c = await client(cleanup, address.port);
        let endedAfterSettling: boolean | undefined;
        c.socket.once('end', () => {
          endedAfterSettling = settled;
        });
        expect(await c.line(0)).to.equal('hello');
        c.socket.write('ping\n');
        expect(await c.line(1)).to.equal('echo ping');
        expect(c.ended, 'the connection ended before the handler settled').to.equal(false);
        expect(book(listener.stats())).to.deep.equal({ accepted: 1, closed: 0, active: 1, leaked: 0 });

        settled = true;
        settle();
        await c.whenClosed();
        expect(endedAfterSettling, 'the client saw the end of the stream').to.equal(true);
        expect(c.error, 'the connection was ended, not reset').to.equal(null);
        await within(Promise.all(closing), 'the server side to close');
        expect(book(listener.stats())).to.deep.equal({ accepted: 1, closed: 1, active: 0, leaked: 0 });
      });

      it("destroys the connection and reports connectionError when the handler's promise rejects", async () => {
        const errors: NodeJS.ErrnoException[] = [];
        const { listener, address } = await open(cleanup, { port: 0, host: '127.0.0.1', backend }, () =>
          Promise.reject(new Error('handler failed on purpose')),
        );
        listener.on('connectionError', (error: NodeJS.ErrnoException) => errors.push(error));
        const c = await client(cleanup, address.port);
        await c.whenClosed();
        await waitUntil(() => listener.stats().closed === 1, 'the connection to be counted closed');
        expect(errors.map((error) => error.code)).to.deep.equal(['ERR_HANDLER_FAILED']);
        const stats = listener.stats();
        expect(book(stats)).to.deep.equal({ accepted: 1, closed: 1, active: 0, leaked: 0 });
        expect(stats.handlerErrors).to.equal(1);
      });
    });
  }
});

describe('choosing the address: IPv6 first, a dual-stack wildcard', () => {
  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      it('binds the IPv6 wildcard :: when no host is given, and serves IPv4 and IPv6 clients', async () => {
        const remotes: Array<string | undefined> = [];
        const { address } = await open(cleanup, { port: 0, backend }, (socket, { id }) => {
          remotes.push(socket.remoteAddress);
          socket.end(`${id}\n`);
        });
        expect({ address: address.address, family: address.family }).to.deep.equal({ address: '::', family: 'IPv6' });
        const ipv4 = await client(cleanup, address.port, '127.0.0.1');
        expect(await ipv4.line()).to.equal('1');
        const ipv6 = await client(cleanup, address.port, '::1');
        expect(await ipv6.line()).to.equal('2');
        // The IPv4 client reached the IPv6 socket as an IPv4-mapped address: one dual-stack socket.
        expect(remotes).to.deep.equal(['::ffff:127.0.0.1', '::1']);
      });

      it('binds IPv4 for host 127.0.0.1', async () => {
        const { address } = await open(cleanup, { port: 0, host: '127.0.0.1', backend }, (socket) => void socket.end('ok\n'));
        expect({ address: address.address, family: address.family }).to.deep.equal({ address: '127.0.0.1', family: 'IPv4' });
        expect(await (await client(cleanup, address.port, '127.0.0.1')).line()).to.equal('ok');
      });

      it('binds IPv6 for host ::1', async () => {
        const { address } = await open(cleanup, { port: 0, host: '::1', backend }, (socket) => void socket.end('ok\n'));
        expect({ address: address.address, family: address.family }).to.deep.equal({ address: '::1', family: 'IPv6' });
        expect(await (await client(cleanup, address.port, '::1')).line()).to.equal('ok');
      });

      it('createLocalTCPListener binds 127.0.0.1 when no host is given', async () => {
        const listener = createLocalTCPListener({ port: 0, backend }, (socket) => void socket.end('ok\n'));
        cleanup.add(() => listener.close());
        const address = await listener.listen();
        expect({ address: address.address, family: address.family }).to.deep.equal({ address: '127.0.0.1', family: 'IPv4' });
        expect(listener.address()).to.deep.equal(address);
      });
    });
  }
});

/** The first TCP service in /etc/services on an unprivileged port that nothing listens on. */
async function freeNamedService(): Promise<{ name: string; port: number } | undefined> {
  let services: string;
  try {
    services = fs.readFileSync('/etc/services', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of services.split('\n')) {
    const match = /^([A-Za-z][\w-]*)\s+(\d+)\/tcp\b/.exec(line);
    if (match?.[1] === undefined || match[2] === undefined) continue;
    const port = Number(match[2]);
    if (port < 1024) continue;
    if ((await canBind(port, '127.0.0.1')) && (await canBind(port, '::1'))) return { name: match[1], port };
  }
  return undefined;
}

describe('ports given as service names', () => {
  // Both backends resolve through the addon's getaddrinfo (off the event loop) when it loads;
  // only without the addon does a name fail (dns.lookup knows no services).
  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      it('resolves a name from /etc/services to its port', async function () {
        const service = await freeNamedService();
        if (!service) this.skip();
        const listener = createLocalTCPListener({ port: service.name, backend }, (socket) => void socket.end('ok\n'));
        cleanup.add(() => listener.close());
        const address = await listener.listen();
        expect(address.port, `service ${service.name}`).to.equal(service.port);
        expect(await (await client(cleanup, service.port)).line()).to.equal('ok');
      });

      it('rejects an unknown service name with ERR_RESOLVE_FAILED', async () => {
        const error = await listenFailure({ port: 'no-such-service-ntl', host: '127.0.0.1', backend }, cleanup);
        expect(error.code, error.message).to.equal('ERR_RESOLVE_FAILED');
      });
    });
  }
});

describe('invalid options and ports already in use', () => {
  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      for (const port of [70000, -1, 1.5, Number.NaN, '']) {
        it(`rejects port ${typeof port === 'string' ? JSON.stringify(port) : String(port)} with ERR_INVALID_OPTION`, async () => {
          const error = await listenFailure({ port, host: '127.0.0.1', backend }, cleanup);
          expect(error.code, error.message).to.equal('ERR_INVALID_OPTION');
        });
      }

      // Each reaches a system call or a timer, where a fraction, NaN, Infinity or a huge value
      // would be truncated, wrapped, or (for a timer over 2^31-1 ms) fire after 1 ms.
      const badNumbers: Array<[string, Partial<TCPListenerOptions>]> = [
        ['backlog 1.5', { backlog: 1.5 }],
        ['backlog Infinity', { backlog: Infinity }],
        ['backlog 2^31', { backlog: 2 ** 31 }],
        ['idleTimeout NaN', { idleTimeout: Number.NaN }],
        ['idleTimeout 2^31 ms', { idleTimeout: 2 ** 31 }],
        ['gracefulCloseTimeout Infinity', { gracefulCloseTimeout: Infinity }],
        ['fd 3.5', { fd: 3.5 }],
      ];
      for (const [what, bad] of badNumbers) {
        it(`rejects ${what} with ERR_INVALID_OPTION when the listener is created`, () => {
          expect(() => new TCPListener({ port: 0, host: '127.0.0.1', backend, ...bad }, () => undefined))
            .to.throw()
            .with.property('code', 'ERR_INVALID_OPTION');
        });
      }

      it('rejects close({ gracefulTimeout }) that is not a whole number of ms up to 2^31-1, and still closes when asked properly', async () => {
        const { listener } = await open(cleanup, { port: 0, host: '127.0.0.1', backend }, () => undefined);
        for (const gracefulTimeout of [-1, 0.5, Number.NaN, Infinity, 2 ** 31]) {
          expect(() => listener.close({ gracefulTimeout }), String(gracefulTimeout))
            .to.throw()
            .with.property('code', 'ERR_INVALID_OPTION');
        }
        await within(listener.close({ gracefulTimeout: 100 }), 'close()');
      });

      it('rejects a negative backlog and a non-descriptor fd with ERR_INVALID_OPTION', async () => {
        expect((await listenFailure({ port: 0, backlog: -1, backend }, cleanup)).code).to.equal('ERR_INVALID_OPTION');
        expect((await listenFailure({ port: 0, fd: -1, backend }, cleanup)).code).to.equal('ERR_INVALID_OPTION');
      });

      it("rejects a port in use with EADDRINUSE from 'bind', leaving no descriptor behind", async () => {
        const { server, port } = await listeningServer('127.0.0.1');
        cleanup.add(() => closeServer(server));
        const before = descriptorCount();
        const error = await listenFailure({ port, host: '127.0.0.1', backend }, cleanup);
        expect({ code: error.code, errno: error.errno, syscall: error.syscall }, error.message).to.deep.equal({
          code: 'EADDRINUSE',
          errno: os.constants.errno.EADDRINUSE,
          syscall: 'bind',
        });
        await waitUntil(() => descriptorCount() === before, 'the failed listener to release its socket');
      });
    });
  }
});

describe('adopting a listening descriptor the caller already holds', () => {
  // How a test gets such a descriptor cleanly, the way socket activation (systemd, inetd)
  // hands one over: a net.Server binds a port, its descriptor goes to a child process as
  // INHERITED_FD (spawn's stdio array dup2()s it there), then the net.Server closes its copy. The
  // child's listener adopts it and is the only owner of the listening socket from then on.
  // Adopting in this process instead would leave net.Server polling the same socket, racing
  // the listener for every connection.
  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      it('serves clients on the adopted socket and closes it on close(), freeing the port', async () => {
        const { server, port } = await listeningServer('127.0.0.1');
        cleanup.add(() => closeServer(server));
        const child = adoptingChild(backend, server);
        cleanup.add(() => child.stop());
        await closeServer(server);

        const listening = await child.waitFor('listening');
        expect({ address: listening.address, port: listening.port }).to.deep.equal({ address: '127.0.0.1', port });
        const inode = listeningSocketInode(port);
        expect(inode, 'the listening socket in /proc/net/tcp').to.be.a('number');
        expect((await child.request({ cmd: 'fdinfo', fd: INHERITED_FD }, 'fdinfo')).link).to.equal(`socket:[${inode}]`);

        const c = await client(cleanup, port);
        expect(await c.line()).to.equal('hello 1');
        await c.whenClosed();

        child.send({ cmd: 'close' });
        const closed = await child.waitFor('close');
        expect(book(closed.stats)).to.deep.equal({ accepted: 1, closed: 1, active: 0, leaked: 0 });
        const after = await child.request({ cmd: 'fdinfo', fd: INHERITED_FD }, 'fdinfo');
        expect(after.open, 'the adopted descriptor is still open').to.equal(false);
        expect(await canBind(port), 'the port is free again').to.equal(true);
      });
    });
  }
});

describe('closing the listener: with clients connected, from a handler, while still opening', () => {
  before(async () => {
    // Let Node open whatever it opens lazily on first use, so descriptor counts compare like with like.
    const warm = await listeningServer('127.0.0.1');
    const c = await connect(warm.port);
    c.destroy();
    await c.whenClosed();
    await closeServer(warm.server);
  });

  for (const { backend, mode, label } of backendModes) {
    describe(label, () => {
      const cleanup = new Cleanup();
      const harness = new ModeHarness(mode);
      afterEach(() => cleanup.run());
      after(() => harness.close());

      it('resolves, releases every descriptor, frees the port and emits close once; a second close is harmless', async () => {
        const baseline = descriptorCount();
        const listener = harness.tcp({ port: 0, host: '127.0.0.1', backend }, () => (socket, { id }) => {
          socket.write(`hello ${id}\n`);
          return new Promise<void>(() => undefined); // holds the connection until close()
        });
        cleanup.add(() => listener.close());
        const address = await listener.listen();
        const clients: Client[] = [];
        for (let i = 0; i < 3; i++) clients.push(await client(cleanup, address.port));
        // Ids count per worker: with two, the three clients get 1 and 1, then 1 or 2.
        for (const [index, c] of clients.entries()) expect(await c.line()).to.match(mode === 'workers' ? /^hello [12]$/ : new RegExp(`^hello ${index + 1}$`));

        // The served connections, wherever they are served: this process's descriptors on the port.
        const connections = descriptorsOnPort(address.port, 'connections');
        expect(connections).to.have.length(3);
        const listenerInodes = [listeningSocketInode(address.port), ...connections.map((fd) => socketInode(fd))];
        for (const inode of listenerInodes) expect(inode, 'an inode of the listener').to.be.a('number');
        let closeEvents = 0;
        listener.on('close', () => closeEvents++);

        const first = listener.close();
        const second = listener.close();
        await within(Promise.all([first, second]), 'close() to resolve');
        expect(closeEvents).to.equal(1);
        const held = socketInodes();
        expect(listenerInodes.filter((inode) => inode !== undefined && held.has(inode)), 'sockets still open').to.deep.equal([]);
        expect(book(listener.stats())).to.deep.equal({ accepted: 3, closed: 3, active: 0, leaked: 0 });
        expect(listener.address()).to.equal(null);

        // The port is free at once: another listener binds it right away.
        const again = new TCPListener({ port: address.port, host: '127.0.0.1', backend }, (socket) => void socket.end());
        cleanup.add(() => again.close());
        expect((await again.listen()).port).to.equal(address.port);
        await again.close();

        await Promise.all(clients.map((c) => c.whenClosed()));
        await within(listener.close(), 'a third close() to resolve');
        expect(closeEvents).to.equal(1);
        await waitUntil(() => descriptorCount() === baseline, `the descriptor count to return to ${baseline}`);
      });

      it('close() called from a handler stops accepting and still accounts for every connection', async function () {
        // With workers the handler runs in a worker thread, where the main thread's listener is out of reach.
        if (mode === 'workers') this.skip();
        let closing: Promise<void> | undefined;
        const { listener, address } = await open(cleanup, { port: 0, host: '127.0.0.1', backend }, (socket) => {
          socket.write('hello\n');
          closing ??= listener.close();
          return new Promise<void>(() => undefined);
        });
        // Several clients at once, so the first accept batch may hold more than one. Those the
        // listener had not accepted when it closed are reset, which may fail their connect.
        const attempts = await Promise.allSettled(Array.from({ length: 5 }, () => client(cleanup, address.port)));
        await waitUntil(() => closing !== undefined, 'the handler to run');
        await within(closing ?? Promise.resolve(), 'close() to resolve');
        const clients = attempts.flatMap((attempt) => (attempt.status === 'fulfilled' ? [attempt.value] : []));
        await Promise.all(clients.map((c) => c.whenClosed()));
        const stats = listener.stats();
        expect(stats.accepted).to.be.within(1, 5);
        expect(book(stats)).to.deep.equal({ accepted: stats.accepted, closed: stats.accepted, active: 0, leaked: 0 });
        expect(await connectOutcome(address.port)).to.equal('ECONNREFUSED');
      });

      it('close() while listen() is opening: listen() rejects with ERR_LISTENER_CLOSED and nothing stays bound', async () => {
        // In a child process: a listener that fails this leaves a socket open that would keep
        // this process alive.
        const { server, port } = await listeningServer('127.0.0.1');
        await closeServer(server); // a port that was free a moment ago
        const workers = mode === 'workers' ? 2 : undefined;
        const child = ChildListener.start({ backend, port, host: '127.0.0.1', workers, mode: 'serve', closeWhileOpening: true });
        cleanup.add(() => child.stop());
        const outcome = await child.waitFor('closedWhileOpening');
        await child.waitFor('close');
        expect(outcome.listen, 'how listen() settled').to.equal('ERR_LISTENER_CLOSED');
        expect(await connectOutcome(port), 'connecting to the closed listener').to.equal('ECONNREFUSED');
        expect(await canBind(port), 'the port is free').to.equal(true);
        const { descriptors } = await child.request({ cmd: 'stats' }, 'stats');
        expect(descriptors, 'descriptors open in the child, compared with before listen()').to.equal(outcome.descriptorsBefore);
      });

      it("a failed listen() emits no 'close', and the listener can listen again once the port is free (as net.Server)", async () => {
        const { server, port } = await listeningServer('127.0.0.1');
        const listener = harness.tcp({ port, host: '127.0.0.1', backend }, () => (socket) => void socket.end('served'));
        cleanup.add(() => listener.close());
        let closeEvents = 0;
        listener.on('close', () => closeEvents++);
        const failure = await listener.listen().then(
          () => null,
          (error: NodeJS.ErrnoException) => error,
        );
        expect(failure?.code, 'how the first listen() settled').to.equal('EADDRINUSE');
        expect(closeEvents, "'close' events after the failed listen()").to.equal(0);
        expect(listener.address()).to.equal(null);
        await closeServer(server);
        const address = await within(listener.listen(), 'listen() again');
        expect(address.port).to.equal(port);
        const c = await client(cleanup, port);
        await c.whenClosed();
        expect(c.received).to.equal('served');
        await listener.close();
        expect(closeEvents, "'close' events after close()").to.equal(1);
      });

      it('close() checks its options before anything closes: an unknown key or a bad number throws ERR_INVALID_OPTION', async () => {
        const listener = harness.tcp({ port: 0, host: '127.0.0.1', backend }, () => (socket) => void socket.end('served'));
        cleanup.add(() => listener.close());
        const { port } = await listener.listen();
        const thrown = (options: unknown): string | undefined => {
          try {
            void listener.close(options as CloseOptions);
          } catch (error) {
            return (error as NodeJS.ErrnoException).code;
          }
          return undefined;
        };
        expect(thrown({ gracefullTimeout: 100 }), 'close({ gracefullTimeout })').to.equal('ERR_INVALID_OPTION');
        expect(thrown({ gracefulTimeout: -1 }), 'close({ gracefulTimeout: -1 })').to.equal('ERR_INVALID_OPTION');
        expect(thrown(null), 'close(null)').to.equal('ERR_INVALID_OPTION');
        // Nothing was closed by the refused calls.
        const c = await client(cleanup, port);
        await c.whenClosed();
        expect(c.received).to.equal('served');
        await listener.close({ gracefulTimeout: 100 });
      });

      it('listen() twice returns one promise; listen() after close() rejects with ERR_LISTENER_CLOSED', async () => {
        const listener = harness.tcp({ port: 0, host: '127.0.0.1', backend }, () => (socket) => void socket.end());
        cleanup.add(() => listener.close());
        const first = listener.listen();
        expect(listener.listen()).to.equal(first);
        await first;
        await listener.close();
        const again = harness.tcp({ port: 0, host: '127.0.0.1', backend }, () => (socket) => void socket.end());
        await again.close();
        const error = await again.listen().then(
          () => null,
          (failure: NodeJS.ErrnoException) => failure,
        );
        expect(error?.code).to.equal('ERR_LISTENER_CLOSED');
      });

      it('with gracefulTimeout ends each connection and lets its peer close it', async () => {
        const listener = harness.tcp({ port: 0, host: '127.0.0.1', backend }, () => (socket, { id }) => {
          socket.write(`hello ${id}\n`);
          return new Promise<void>(() => undefined);
        });
        cleanup.add(() => listener.close());
        const address = await listener.listen();
        const clients = [await client(cleanup, address.port), await client(cleanup, address.port)];
        for (const c of clients) await c.line();
        await within(listener.close({ gracefulTimeout: 10_000 }), 'a graceful close() to resolve');
        await Promise.all(clients.map((c) => c.whenClosed()));
        expect(clients.map((c) => ({ ended: c.ended, error: c.error?.code ?? null }))).to.deep.equal([
          { ended: true, error: null },
          { ended: true, error: null },
        ]);
        expect(book(listener.stats())).to.deep.equal({ accepted: 2, closed: 2, active: 0, leaked: 0 });
      });
    });
  }
});

describe('a graceful close() always settles, even when a peer neither reads nor closes', () => {
  // The child's last work is `await listener.close({ gracefulTimeout: 300 })`; its client (here)
  // sends 256 KiB that the handler leaves unread and never closes. A close() whose only timer
  // does not keep the process alive lets the loop drain: the child would exit with code 13
  // (an unsettled top-level await) and never say 'closed'.
  for (const backend of backends) {
    for (const mode of ['finished', 'running'] as const) {
      it(`${backend} backend, the handler ${mode === 'finished' ? 'already finished' : 'still running'}: close() resolves after gracefulTimeout`, async () => {
        const cleanup = new Cleanup();
        try {
          const child = GracefulCloseChild.start({ backend, mode });
          cleanup.add(() => child.stop());
          const { port } = await child.waitFor('listening');
          const peer = await client(cleanup, port);
          peer.socket.write(Buffer.alloc(256 * 1024, 0x61));
          const closed = await child.waitFor('closed', () => true, { timeoutMs: 10_000 });
          // Bounded by gracefulTimeout plus a margin for a loaded machine, never open-ended.
          expect(closed.ms, child.transcript()).to.be.at.most(300 + 3000);
          expect(book(closed.stats)).to.deep.equal({ accepted: 1, closed: 1, active: 0, leaked: 0 });
          await within(child.exited, 'the child to exit');
          expect(child.exitCode, child.transcript()).to.equal(0);
        } finally {
          await cleanup.run();
        }
      });
    }
  }
});

// Prints, one per line, what each of the child's own descriptors points to.
const listOwnDescriptors = `
const fs = require('node:fs');
for (const fd of fs.readdirSync('/proc/self/fd')) {
  try { console.log(fs.readlinkSync('/proc/self/fd/' + fd)); } catch {}
}`;

describe('close-on-exec: a child process inherits none of the listener sockets', () => {
  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      it('a child spawned while clients are connected holds neither the listening nor an accepted socket', async () => {
        const served: net.Socket[] = [];
        const { address } = await open(cleanup, { port: 0, host: '127.0.0.1', backend }, (socket, { id }) => {
          served.push(socket);
          socket.write(`hello ${id}\n`);
          return new Promise<void>(() => undefined);
        });
        for (let i = 0; i < 2; i++) await (await client(cleanup, address.port)).line();
        const ours = [listeningSocketInode(address.port), ...served.map((socket) => socketInode(handleFd(socket)))];
        expect(ours).to.have.length(3);
        for (const inode of ours) expect(inode, 'an inode of the listener').to.be.a('number');

        const { stdout } = await execFileAsync(process.execPath, ['-e', listOwnDescriptors], { timeout: 10_000 });
        const links = stdout.split('\n').filter((line) => line !== '');
        expect(links.length, 'the child listed its descriptors').to.be.at.least(3);
        const inherited = parseSocketLinks(links);
        const leaked = ours.filter((inode) => inode !== undefined && inherited.has(inode));
        expect(leaked, 'listener sockets in the child').to.deep.equal([]);
      });

      it('an adopted listening descriptor is made close-on-exec', async () => {
        // The descriptor comes in through spawn's stdio, so it starts out inheritable.
        const { server } = await listeningServer('127.0.0.1');
        cleanup.add(() => closeServer(server));
        const child = adoptingChild(backend, server);
        cleanup.add(() => child.stop());
        await closeServer(server);
        const startup = await child.waitFor('startup');
        expect(startup.adopted?.open, 'the descriptor reached the child').to.equal(true);
        expect((startup.adopted?.flags ?? 0) & O_CLOEXEC, 'the descriptor was close-on-exec before adoption').to.equal(0);
        await child.waitFor('listening');
        const info = await child.request({ cmd: 'fdinfo', fd: INHERITED_FD }, 'fdinfo');
        expect(info.open).to.equal(true);
        expect((info.flags ?? 0) & O_CLOEXEC, `adopted descriptor flags ${(info.flags ?? 0).toString(8)}`).to.equal(O_CLOEXEC);
      });
    });
  }
});
