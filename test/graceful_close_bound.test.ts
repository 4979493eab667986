// gracefulCloseTimeout bounds a connection whose handler ended it (socket.end()), whether the
// handler returned nothing or a promise, on the one-socket TLS path and on the wrapped path:
// a peer that sends close_notify and closes (openssl s_client at end of input) is seen closing
// even though the handler never reads, and one that never closes is destroyed at the bound.
import tls from 'node:tls';
import { expect } from 'chai';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import { expectBalanced, run, startListener, useCleanup, waitUntil } from './support/tls_harness.js';
import type { ConnectionHandler } from '../src/index.js';

const PATHS: Array<{ name: string; options: { alpn?: string[] } }> = [
  { name: 'one-socket TLS path', options: {} },
  { name: 'wrapped path (alpn)', options: { alpn: ['x-test'] } },
];

const HANDLERS: Record<string, ConnectionHandler> = {
  'returns nothing': (socket) => {
    socket.end('bye\n');
  },
  'returns a promise': async (socket) => {
    socket.end('bye\n');
    await new Promise((resolve) => socket.once('finish', resolve));
  },
};

describe('gracefulCloseTimeout bounds a connection the handler ended', function () {
  this.timeout(30_000);
  const cleanup = useCleanup();
  let pki: TestPki;
  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
  });

  for (const path of PATHS) {
    for (const [kind, handler] of Object.entries(HANDLERS)) {
      it(`${path.name}, a handler that ${kind}: a client that sends close_notify and closes is released`, async () => {
        const running = await startListener(cleanup, { backend: 'native', gracefulCloseTimeout: 500, credential: { cert: pki.server.cert, key: pki.server.key }, ...path.options }, handler);
        // As `echo | openssl s_client -noservername`: a line the handler never reads, then
        // close_notify and FIN at the end of its input.
        await run(cleanup, 'openssl', ['s_client', '-connect', `127.0.0.1:${running.port}`, '-noservername'], { typeInto: (stdin) => stdin.end('\n') });
        // The bound is 500 ms; the wait allows far more, so only a connection left open fails.
        await waitUntil(() => running.listener.stats().active === 0, 'the connection to be released', 10_000);
        expectBalanced(running.listener);
      });
    }

    it(`${path.name}: a peer that never closes is destroyed at the bound, and close() does not wait its own timeout`, async () => {
      const running = await startListener(cleanup, { backend: 'native', gracefulCloseTimeout: 500, credential: { cert: pki.server.cert, key: pki.server.key }, ...path.options }, HANDLERS['returns nothing'] as ConnectionHandler);
      // A client that never reads never sees the server's close_notify and FIN, so never closes.
      const client = tls.connect({ port: running.port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['x-test'] });
      cleanup.add(() => client.destroy());
      client.on('error', () => undefined);
      await new Promise((resolve) => client.once('secureConnect', resolve));
      await running.servedCount(1);
      await waitUntil(() => running.listener.stats().active === 0, 'the connection to be destroyed at the bound', 10_000);
      expectBalanced(running.listener);
      const started = process.hrtime.bigint();
      await running.listener.close({ gracefulTimeout: 20_000 });
      expect(Number(process.hrtime.bigint() - started) / 1e6, 'close() with nothing left to wait for').to.be.below(10_000);
    });
  }
});
