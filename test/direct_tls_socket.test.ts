// Where nothing has to be read before TLS (no ALPN to choose by the client's list, no SNI
// credential of another key type), the native acceptor's descriptors are opened under a
// TLSSocket of their own, with no net.Socket beneath it (src/tls/direct_tls_socket.ts). These
// cases check which way each configuration goes, and that one socket per connection keeps every
// behaviour of two: the handshake, the peer's address, a reset, a FIN, a TLS error, the idle
// timeout, a graceful end and the books.
import net from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import { adoptDescriptor } from '../src/index.js';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import { expectBalanced, rawConnect, startListener, tlsConnect, useCleanup, waitUntil, within } from './support/tls_harness.js';
import type { RunningListener } from './support/tls_harness.js';
import { listenerModes, ModeHarness } from './support/listener_modes.js';

/** The net.Socket a TLSSocket was built on, if any (Node keeps it as `_parent`). */
function socketUnder(socket: tls.TLSSocket): unknown {
  return (socket as unknown as { _parent?: unknown })._parent ?? null;
}

describe('one socket per TLS connection: a TLSSocket opened on the accepted descriptor', () => {
  const cleanup = useCleanup();
  let pki: TestPki;
  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
  });

  /** A listener whose handler keeps each socket it is given and greets the client. */
  async function serving(options: Record<string, unknown>, dependencies?: Parameters<typeof startListener>[3]): Promise<{ running: RunningListener; sockets: tls.TLSSocket[] }> {
    const sockets: tls.TLSSocket[] = [];
    const running = await startListener(
      cleanup,
      { credential: { cert: pki.server.cert, key: pki.server.key }, ...options },
      (socket) => {
        sockets.push(socket);
        socket.write('hello');
      },
      dependencies,
    );
    return { running, sockets };
  }

  it('native backend without ALPN: the handler\'s TLSSocket is the only socket, its peer read from accept()', async () => {
    const { running, sockets } = await serving({ backend: 'native' });
    const client = tlsConnect(cleanup, running.port);
    await client.receive('hello');
    const socket = sockets[0] as tls.TLSSocket;
    expect(socketUnder(socket), 'a net.Socket under the TLSSocket').to.equal(null);
    // Its peer is primed from accept(): the TCP handle under it is not asked.
    let lookups = 0;
    const layer = (socket as unknown as { _handle: { getpeername(out: object): number } })._handle;
    const real = layer.getpeername.bind(layer);
    layer.getpeername = (out) => {
      lookups++;
      return real(out);
    };
    expect({ address: socket.remoteAddress, port: socket.remotePort }).to.deep.equal({ address: '127.0.0.1', port: client.localPort });
    expect(lookups, 'getpeername() calls').to.equal(0);
    expect(socket.localPort).to.equal(running.port);
    expect(running.listener.stats().handshakes.completed).to.equal(1);
  });

  it('with ALPN the ClientHello is peeked natively, then one TLSSocket opened on the descriptor, its peer from accept()', async () => {
    const { running, sockets } = await serving({ backend: 'native', alpn: ['h2', 'http/1.1'] });
    const client = tlsConnect(cleanup, running.port, { ALPNProtocols: ['http/1.1', 'h2'] });
    await client.receive('hello');
    const socket = sockets[0] as tls.TLSSocket;
    expect(socketUnder(socket), 'a net.Socket under the TLSSocket').to.equal(null);
    // The client's preference, not the server's.
    expect(socket.alpnProtocol).to.equal('http/1.1');
    let lookups = 0;
    const layer = (socket as unknown as { _handle: { getpeername(out: object): number } })._handle;
    const real = layer.getpeername.bind(layer);
    layer.getpeername = (out) => {
      lookups++;
      return real(out);
    };
    expect({ address: socket.remoteAddress, port: socket.remotePort }).to.deep.equal({ address: '127.0.0.1', port: client.localPort });
    expect(lookups, 'getpeername() calls').to.equal(0);
  });

  it('with ALPN on the js backend the ClientHello is read in JS, from a net.Socket that the TLSSocket is then built on', async () => {
    const { running, sockets } = await serving({ backend: 'js', alpn: ['h2', 'http/1.1'] });
    const client = tlsConnect(cleanup, running.port, { ALPNProtocols: ['http/1.1'] });
    await client.receive('hello');
    expect(socketUnder(sockets[0] as tls.TLSSocket)).to.be.instanceOf(net.Socket);
  });

  it('the JS backend, and a given adopter, wrap the descriptor in a net.Socket as before', async () => {
    const js = await serving({ backend: 'js' });
    const adopted: number[] = [];
    const native = await serving({ backend: 'native' }, {
      adoptDescriptor: (fd) => {
        adopted.push(fd);
        return adoptDescriptor(fd);
      },
    });
    for (const { running } of [js, native]) await tlsConnect(cleanup, running.port).receive('hello');
    expect(socketUnder(js.sockets[0] as tls.TLSSocket)).to.be.instanceOf(net.Socket);
    expect(socketUnder(native.sockets[0] as tls.TLSSocket)).to.be.instanceOf(net.Socket);
    expect(adopted).to.have.length(1);
  });

  // The same cases through a net.Socket (a given adopter wraps), as the reference.
  for (const mode of ['one socket', 'wrapped'] as const) {
    it(`a reset, a FIN and bytes that are not TLS during the handshake: one code each, nothing leaked (${mode})`, async () => {
      const dependencies = mode === 'wrapped' ? { adoptDescriptor } : undefined;
      const { running } = await serving({ backend: 'native' }, dependencies);
      const reset = await rawConnect(cleanup, running.port);
      reset.socket.write(Buffer.from([0x16, 0x03, 0x01]));
      await waitUntil(() => running.listener.stats().accepted === 1, 'the first connection accepted');
      reset.socket.resetAndDestroy();
      const first = await running.nextClientError();
      const fin = await rawConnect(cleanup, running.port);
      fin.socket.end();
      const second = await running.nextClientError();
      const garbage = await rawConnect(cleanup, running.port);
      garbage.socket.write('GET / HTTP/1.1\r\n\r\n');
      const third = await running.nextClientError();
      // A reset right behind a partial record may be seen as the end it also is, on either path.
      expect(first.error.code).to.be.oneOf(['ECONNRESET', 'ERR_CLIENT_CLOSED']);
      expect(second.error.code).to.equal('ERR_CLIENT_CLOSED');
      expect(third.error.code).to.match(/^ERR_SSL_/);
      expect(third.info.remoteAddress).to.equal('127.0.0.1');
      await waitUntil(() => running.listener.stats().active === 0, 'every connection released');
      expect(running.listener.stats().handshakes).to.include({ completed: 0, failed: 3 });
      expectBalanced(running.listener);
    });
  }

  it('the idle timeout ends a silent connection, and a graceful handler end reaches the client', async () => {
    const { running } = await serving({ backend: 'native', idleTimeout: 200 });
    const silent = await rawConnect(cleanup, running.port);
    const idle = await running.nextClientError();
    expect(idle.error.code).to.equal('ERR_IDLE_TIMEOUT');
    await waitUntil(() => silent.closed, 'the silent client to be closed');
    const client = tlsConnect(cleanup, running.port);
    await client.receive('hello');
    // Left alone, the served connection times out too: the client sees its end.
    await waitUntil(() => client.closed, 'the idle served connection to be closed');
    await waitUntil(() => running.listener.stats().active === 0, 'every connection released');
    expect(running.listener.stats().idleTimeouts).to.equal(2);
    expectBalanced(running.listener);
  });
});

// With one socket per connection, the handler's socket would be the very socket that carries the
// listener's idle timer: a handler (or Node's HTTP server, which sets and clears keep-alive
// timeouts on its sockets) calling setTimeout() would replace or clear it, and the listener's
// idle timeout would fire the handler's 'timeout' listeners. The idle timer stays the
// listener's own: with an idleTimeout the descriptor is wrapped (Listener.onDescriptors).
describe('idleTimeout is the listener\'s own timer, whatever the handler does with setTimeout()', () => {
  const cleanup = useCleanup();
  let pki: TestPki;
  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
  });

  for (const mode of ['no adopter given', 'wrapped'] as const) {
    it(`a handler's longer setTimeout() neither stops the idle timeout nor hears it (${mode})`, async () => {
      const handlerTimeouts: number[] = [];
      const sockets: tls.TLSSocket[] = [];
      const running = await startListener(
        cleanup,
        { backend: 'native', idleTimeout: 200, credential: { cert: pki.server.cert, key: pki.server.key } },
        (socket) => {
          sockets.push(socket);
          socket.setTimeout(60_000, () => handlerTimeouts.push(Date.now()));
          socket.write('hello');
        },
        mode === 'wrapped' ? { adoptDescriptor } : undefined,
      );
      const client = tlsConnect(cleanup, running.port);
      await client.receive('hello');
      await waitUntil(() => client.closed, 'the idle connection to be closed by idleTimeout', 3_000);
      await waitUntil(() => running.listener.stats().active === 0, 'the connection released');
      expect(running.listener.stats().idleTimeouts).to.equal(1);
      expect(handlerTimeouts, "the handler's 'timeout' listener").to.deep.equal([]);
      // With an idleTimeout the descriptor is wrapped: the idle timer is on the socket beneath.
      expect(socketUnder(sockets[0] as tls.TLSSocket)).to.be.instanceOf(net.Socket);
      expectBalanced(running.listener);
    });
  }

  for (const mode of ['no adopter given', 'wrapped'] as const) {
    it(`a keep-alive HTTP/1.1 connection of the http route is still ended by idleTimeout after its second request (${mode})`, async () => {
      const running = await startListener(
        cleanup,
        {
          backend: 'native',
          idleTimeout: 300,
          credential: { cert: pki.server.cert, key: pki.server.key },
          sniCredential: { cert: pki.sni.cert, key: pki.sni.key },
          http: (_request, response) => response.end('web'),
        },
        () => undefined,
        mode === 'wrapped' ? { adoptDescriptor } : undefined,
      );
      const client = tlsConnect(cleanup, running.port, { servername: 'localhost' });
      await client.whenSecure();
      const request = 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n';
      client.socket.write(request);
      await client.receive('web');
      // The second request's headers make Node's HTTP server clear the keep-alive timeout it set
      // after the first response; its body never comes.
      client.socket.write('POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nab');
      await waitUntil(() => client.closed, 'the idle connection to be closed by idleTimeout', 3_000);
      expect(running.listener.stats().idleTimeouts).to.equal(1);
    });
  }
});

// On the one-socket path the registry's 'close' listener is on the handler's own socket.
describe("a handler that removes its socket's listeners does not take the registry's off", () => {
  const cleanup = useCleanup();
  let pki: TestPki;
  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
  });

  for (const mode of ['one socket', 'wrapped'] as const) {
    for (const removal of ["removeAllListeners('close')", 'removeAllListeners()'] as const) {
      it(`${removal} in the handler: the connection is still released on close, close() finishes (${mode})`, async () => {
        const running = await startListener(
          cleanup,
          { backend: 'native', credential: { cert: pki.server.cert, key: pki.server.key } },
          (socket) => {
            if (removal === 'removeAllListeners()') socket.removeAllListeners();
            else socket.removeAllListeners('close');
            socket.end('hello');
          },
          mode === 'wrapped' ? { adoptDescriptor } : undefined,
        );
        const client = tlsConnect(cleanup, running.port);
        await client.receive('hello');
        await waitUntil(() => client.closed, 'the client to see the end');
        await waitUntil(() => running.listener.stats().active === 0, 'the connection released');
        expectBalanced(running.listener);
        expect(running.listener.audit().closedButTracked).to.deep.equal([]);
        await within(running.listener.close(), 'close() to finish');
      });
    }
  }
});

describe('one socket per TLS connection under a storm and a close(): the books balance', () => {
  const cleanup = useCleanup();
  let pki: TestPki;
  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
  });

  it('600 clients at once, a third served, a third reset mid-handshake, a third reset once secure', async function () {
    this.timeout(60_000);
    const running = await startListener(cleanup, { backend: 'native', credential: { cert: pki.server.cert, key: pki.server.key } }, (socket) => {
      socket.end('hi');
    });
    const CLIENTS = 600;
    let closed = 0;
    for (let i = 0; i < CLIENTS; i++) {
      const raw = net.connect(running.port, '127.0.0.1');
      raw.on('error', () => undefined);
      raw.on('close', () => closed++);
      if (i % 3 === 1) {
        raw.once('connect', () => raw.write(Buffer.from([0x16, 0x03, 0x01]), () => raw.resetAndDestroy()));
        continue;
      }
      const client = tls.connect({ socket: raw, rejectUnauthorized: false });
      client.on('error', () => undefined);
      client.resume();
      if (i % 3 === 2) client.once('secureConnect', () => raw.resetAndDestroy());
    }
    await waitUntil(() => closed === CLIENTS, 'every client closed', 45_000);
    await waitUntil(() => running.listener.stats().active === 0, 'every connection released', 10_000);
    const stats = running.listener.stats();
    expect(stats.accepted).to.equal(CLIENTS);
    expect(stats.handshakes.completed + stats.handshakes.failed).to.equal(CLIENTS);
    expect(stats.handshakes.completed).to.be.at.least(CLIENTS / 3);
    expectBalanced(running.listener);
    expect(running.listener.audit()).to.deep.include({ closedButTracked: [], untracked: [] });
  });

  it('close({ gracefulTimeout }) with one connection in its handshake and one in its handler', async () => {
    const running = await startListener(cleanup, { backend: 'native', credential: { cert: pki.server.cert, key: pki.server.key } }, async (socket) => {
      socket.write('hello');
      await new Promise((resolve) => setTimeout(resolve, 5_000));
    });
    const inSetup = await rawConnect(cleanup, running.port);
    const inHandler = tlsConnect(cleanup, running.port);
    await inHandler.receive('hello');
    await waitUntil(() => running.listener.stats().accepted === 2, 'both connections accepted');
    await within(running.listener.close({ gracefulTimeout: 300 }), 'close() to finish');
    await waitUntil(() => inSetup.closed && inHandler.closed, 'both clients closed');
    expect(running.listener.stats().handshakes).to.include({ completed: 1, aborted: 1, failed: 0 });
    expect(running.clientErrors).to.deep.equal([]);
    expectBalanced(running.listener);
    expect(running.listener.audit()).to.deep.include({ tracked: 0, closedButTracked: [], untracked: [] });
  });
});

describe('idleTimeout and the release on close, with the handler on this thread and in workers', () => {
  const cleanup = useCleanup();
  let pki: TestPki;
  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
  });

  for (const mode of listenerModes) {
    it(`a handler that sets its own long timeout and drops its 'close' listeners is still ended by idleTimeout and released (${mode})`, async function () {
      this.timeout(20_000);
      const harness = new ModeHarness(mode);
      cleanup.add(() => harness.close());
      const listener = harness.tls(
        { backend: 'native', host: '127.0.0.1', port: 0, idleTimeout: 200, credential: { cert: pki.server.cert, key: pki.server.key } },
        () => (socket) => {
          socket.setTimeout(60_000);
          socket.removeAllListeners('close');
          socket.write('hello');
        },
      );
      cleanup.add(() => listener.close());
      const { port } = await within(listener.listen(), 'the listener to start');
      const client = tlsConnect(cleanup, port);
      await client.receive('hello', 10_000);
      await waitUntil(() => client.closed, 'the idle connection to be closed by idleTimeout', 5_000);
      await waitUntil(() => listener.stats().active === 0, 'the connection released', 5_000);
      const stats = listener.stats();
      expect(stats).to.deep.include({ accepted: 1, closed: 1, leaked: 0, idleTimeouts: 1 });
      await within(listener.close(), 'close() to finish');
    });
  }
});
