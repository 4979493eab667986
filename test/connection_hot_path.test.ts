// The per-connection path makes no closures (src/connection_lifecycle.ts, as lib/_http_server.js):
// every listener the package puts on a connection's socket is one module-level function shared
// by all connections, its state on the socket under symbols. Checked where the handler holds the
// descriptor's own socket (plain TCP), with every optional listener on (idleTimeout), and on the
// TLSSocket a TLS handler gets: opened on the descriptor (no alpn), on a peeked descriptor
// (alpn), or over a net.Socket (the js backend).
import type net from 'node:net';
import type tls from 'node:tls';
import { expect } from 'chai';
import { TCPListener } from '../src/index.js';
import { Cleanup, connect, waitUntil } from './support/sockets.js';
import { startListener, tlsConnect } from './support/tls_harness.js';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';

const EVENTS = ['close', 'error', 'timeout', 'finish', 'removeListener'] as const;
const TLS_EVENTS = [...EVENTS, 'secure', 'end', '_tlsError'] as const;

/** The listeners of `events` on `first` that `second` does not share: made for one connection. */
function perConnectionListeners(first: net.Socket, second: net.Socket, events: readonly string[]): Record<string, string[]> {
  const made: Record<string, string[]> = {};
  for (const event of events) {
    const own = first.listeners(event).filter((listener) => !second.listeners(event).includes(listener));
    if (own.length > 0) made[event] = own.map((listener) => listener.toString().slice(0, 80));
  }
  return made;
}

describe('the connection hot path: no closure per connection', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  for (const backend of ['native', 'js'] as const) {
    it(`${backend} backend: two connections' sockets carry the very same listener functions`, async function () {
      const sockets: net.Socket[] = [];
      const listener = new TCPListener({ port: 0, host: '127.0.0.1', backend, idleTimeout: 60_000 }, (socket) => {
        sockets.push(socket);
      });
      cleanup.add(() => listener.close());
      const { port } = await listener.listen();
      for (let i = 0; i < 2; i++) {
        const client = await connect(port);
        cleanup.add(() => client.destroy());
      }
      await waitUntil(() => sockets.length === 2, 'both connections in their handler');
      // After the handler returned: the listeners it returns to are on by then.
      await new Promise((resolve) => setImmediate(resolve));
      const [first, second] = sockets as [net.Socket, net.Socket];
      for (const event of EVENTS) {
        const own = first.listeners(event);
        const perConnection = own.filter((listener) => !second.listeners(event).includes(listener));
        expect(perConnection.map((listener) => listener.toString().slice(0, 80)), `'${event}' listeners made for one connection`).to.deep.equal([]);
      }
      expect(first.listeners('close'), "a 'close' listener releases the connection").to.have.length.greaterThan(0);
    });
  }

  describe('TLS: the socket the handler gets', function () {
    let pki: TestPki;
    before(async function () {
      this.timeout(60_000);
      pki = await createTestPki();
    });

    for (const backend of ['native', 'js'] as const) {
      for (const alpn of [undefined, ['h2', 'http/1.1']]) {
        it(`${backend} backend${alpn ? ', alpn' : ''}: two connections' TLSSockets carry the very same listener functions`, async function () {
          const sockets: tls.TLSSocket[] = [];
          const running = await startListener(
            cleanup,
            { backend, credential: pki.server, idleTimeout: 60_000, ...(alpn ? { alpn } : {}) },
            (socket) => {
              sockets.push(socket);
            },
          );
          for (let i = 0; i < 2; i++) await tlsConnect(cleanup, running.port, alpn ? { ALPNProtocols: ['http/1.1'] } : {}).whenSecure();
          await waitUntil(() => sockets.length === 2, 'both connections in their handler');
          await new Promise((resolve) => setImmediate(resolve));
          const [first, second] = sockets as [tls.TLSSocket, tls.TLSSocket];
          expect(perConnectionListeners(first, second, TLS_EVENTS), 'listeners made for one connection').to.deep.equal({});
          expect(perConnectionListeners(second, first, TLS_EVENTS), 'listeners made for one connection').to.deep.equal({});
        });
      }
    }
  });
});
