// The per-connection path makes no closures (src/connection_lifecycle.ts, as lib/_http_server.js):
// every listener the package puts on a connection's socket is one module-level function shared
// by all connections, its state on the socket under symbols. Checked where the handler holds the
// descriptor's own socket (plain TCP), with every optional listener on (idleTimeout).
import type net from 'node:net';
import { expect } from 'chai';
import { TCPListener } from '../src/index.js';
import { Cleanup, connect, waitUntil } from './support/sockets.js';

const EVENTS = ['close', 'error', 'timeout', 'finish', 'removeListener'] as const;

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
});
