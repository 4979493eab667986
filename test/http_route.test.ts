// The SNI route to HTTP (`http`) driven by real clients, on both accept backends: the routed
// server's own headersTimeout and requestTimeout hold, as they do for a listening
// https.createServer.
import { createHook } from 'node:async_hooks';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { expect } from 'chai';
import { createTestPki } from './support/pki.js';
import { BACKENDS, greet, startListener, tlsConnect, useCleanup, waitUntil, within } from './support/tls_harness.js';
import type { Cleanup, TlsClient } from './support/tls_harness.js';
import type { RequestListener } from '../src/tls/tls_listener.js';

const pki = await createTestPki();
const primary = { key: pki.server.key, cert: pki.server.cert };
const sniCredential = { key: pki.sni.key, cert: pki.sni.cert };

const web: RequestListener = (_request, response) => {
  response.end('web');
};

/** Short enough for a test; the checking interval is what a listening server would use. */
const SLOW_CLIENT_TIMEOUTS = { headersTimeout: 1000, requestTimeout: 1500, connectionsCheckingInterval: 100 } as const;

function listening(cleanup: Cleanup, server: net.Server): Promise<number> {
  cleanup.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return within(
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, () => resolve((server.address() as net.AddressInfo).port));
    }),
    'a reference server to listen',
  );
}

/** A client with SNI that sends the start of a request's headers, then nothing. */
async function slowHeaders(cleanup: Cleanup, port: number): Promise<TlsClient> {
  const client = tlsConnect(cleanup, port, { servername: 'localhost', ALPNProtocols: ['http/1.1'] });
  await client.whenSecure();
  client.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
  return client;
}

describe("HTTP routing: the routed server's headersTimeout and requestTimeout hold", function () {
  const cleanup = useCleanup();

  const forms = [
    {
      form: 'a request listener (built into an http.Server with these options through TlsListenerDependencies)',
      http: (): RequestListener => web,
      dependencies: { http1ServerOptions: SLOW_CLIENT_TIMEOUTS },
    },
    { form: 'an http.Server', http: (): http.Server => http.createServer(SLOW_CLIENT_TIMEOUTS, web), dependencies: {} },
  ] as const;

  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      for (const { form, http: target, dependencies } of forms) {
        it(`answers a slow-headers client 408 and closes it, as https.createServer does, for ${form}`, async function () {
          const reference = https.createServer({ ...SLOW_CLIENT_TIMEOUTS, ...sniCredential }, web);
          const referencePort = await listening(cleanup, reference);
          const server = await startListener(cleanup, { backend, credential: primary, sniCredential, http: target() }, greet('protocol\n'), dependencies);
          const [routed, direct] = await Promise.all([slowHeaders(cleanup, server.port), slowHeaders(cleanup, referencePort)]);
          await Promise.all([direct.whenClosed(), routed.whenClosed()]);
          expect(direct.received).to.match(/^HTTP\/1\.1 408 /);
          expect(routed.received).to.match(/^HTTP\/1\.1 408 /);
          await waitUntil(() => server.listener.stats().active === 0, 'the listener to release the routed connection');
        });
      }

      it("checks a given http.Server without emitting 'listening' on it", async function () {
        const httpServer = http.createServer(SLOW_CLIENT_TIMEOUTS, web);
        let listeningEmitted = false;
        httpServer.on('listening', () => {
          listeningEmitted = true;
        });
        const server = await startListener(cleanup, { backend, credential: primary, sniCredential, http: httpServer }, greet('protocol\n'));
        const client = await slowHeaders(cleanup, server.port);
        await client.whenClosed();
        expect(client.received).to.match(/^HTTP\/1\.1 408 /);
        expect(listeningEmitted).to.equal(false);
        expect(httpServer.listening).to.equal(false);
      });

      it('stops the checking timer it started when the listener closes', async function () {
        // A period no other timer in this process uses, to tell the route's timer apart.
        const period = 173;
        const live = new Set<number>();
        const started: number[] = [];
        const hook = createHook({
          init(asyncId, type, _trigger, resource) {
            if (type === 'Timeout' && (resource as { _repeat?: unknown })._repeat === period) {
              started.push(asyncId);
              live.add(asyncId);
            }
          },
          destroy(asyncId) {
            live.delete(asyncId);
          },
        });
        hook.enable();
        cleanup.add(() => hook.disable());
        const httpServer = http.createServer({ ...SLOW_CLIENT_TIMEOUTS, connectionsCheckingInterval: period }, web);
        const server = await startListener(cleanup, { backend, credential: primary, sniCredential, http: httpServer }, greet('protocol\n'));
        const client = await slowHeaders(cleanup, server.port);
        await client.whenClosed();
        expect(started, 'checking timers started').to.have.length(1);
        expect(live.size, 'checking timers running before close').to.equal(1);
        await server.listener.close();
        await waitUntil(() => live.size === 0, 'the checking timer to stop');
      });
    });
  }
});
