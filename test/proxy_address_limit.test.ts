// maxConnectionsPerAddress behind a PROXY protocol balancer: every connection comes from the
// balancer's address, so the limit counts the client each header names, not the socket's
// peer. Real connections on loopback send real headers, on both accept backends.
import net from 'node:net';
import { expect } from 'chai';
import { TCPListener } from '../src/tcp_listener.js';
import type { TCPConnectionInfo } from '../src/tcp_listener.js';
import type { SetupFailureInfo } from '../src/listener.js';
import { createTestPki } from './support/pki.js';
import { inet4, inet6, proxiedTlsConnect, v1, v2 } from './support/proxy_headers.js';
import { BACKENDS, greet, rawConnect, startListener, useCleanup, waitUntil, within } from './support/tls_harness.js';
import type { RawClient, ReportedError } from './support/tls_harness.js';

const LOOPBACK = ['127.0.0.1', '::1'];
const LIMIT = 10;

/** Greets with the client's address and holds the connection until the client ends it. */
function greetAndHold(socket: net.Socket, info: TCPConnectionInfo): Promise<void> {
  socket.write(`hello ${info.remoteAddress ?? '?'}\n`);
  socket.resume();
  return new Promise((resolve) => socket.once('end', resolve));
}

describe('maxConnectionsPerAddress behind a PROXY balancer counts the client the header names', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      async function start() {
        const errors: Array<{ error: ReportedError; info: SetupFailureInfo }> = [];
        const listener = new TCPListener(
          { port: 0, host: '127.0.0.1', backend, proxyProtocol: 'any', trustedProxies: LOOPBACK, maxConnectionsPerAddress: LIMIT },
          greetAndHold,
        );
        listener.on('tlsClientError', (error: ReportedError, info: SetupFailureInfo) => errors.push({ error, info }));
        cleanup.add(() => listener.close());
        const { port } = await within(listener.listen(), 'the listener');
        return { listener, port, errors };
      }

      async function proxied(port: number, header: Buffer): Promise<RawClient> {
        const client = await rawConnect(cleanup, port);
        client.socket.write(header);
        return client;
      }
      const from = (source: string, sourcePort: number): Buffer => v1(`PROXY TCP4 ${source} 192.0.2.1 ${sourcePort} 443`);
      const greeted = (client: RawClient): boolean => client.received.toString().startsWith('hello');

      it('the 11th connection from one header address is closed and counted; another address is served', async function () {
        this.timeout(15_000);
        const { listener, port, errors } = await start();
        const first: RawClient[] = [];
        for (let i = 0; i < LIMIT; i++) first.push(await proxied(port, from('198.51.100.7', 40_000 + i)));
        await waitUntil(() => first.every(greeted), `${LIMIT} clients from one address served`);
        expect(first[0]?.received.toString()).to.equal('hello 198.51.100.7\n');

        const over = await proxied(port, from('198.51.100.7', 41_000));
        await over.whenClosed();
        expect(greeted(over), 'the 11th was served').to.equal(false);
        // The same client as an IPv4-mapped IPv6 address is the same address.
        const mapped = await proxied(port, v2({ familyTransport: 0x21, addresses: inet6('0:0:0:0:0:ffff:c633:6407', '2001:db8:0:0:0:0:0:1', 41_001, 443) }));
        await mapped.whenClosed();
        expect(greeted(mapped), 'the IPv4-mapped one was served').to.equal(false);

        const other = await proxied(port, from('198.51.100.8', 42_000));
        await waitUntil(() => greeted(other), 'another client address served');
        expect(other.received.toString()).to.equal('hello 198.51.100.8\n');

        await waitUntil(() => errors.length === 2, 'both rejections reported');
        expect(errors.map((e) => e.error.code)).to.deep.equal(['ERR_PER_ADDRESS_LIMIT', 'ERR_PER_ADDRESS_LIMIT']);
        expect(errors[0]?.info.remoteAddress).to.equal('198.51.100.7');
        const stats = listener.stats();
        expect(stats.rejected.maxConnectionsPerAddress).to.equal(2);
        expect(stats.handshakes.failed, 'a rejection is not a failed setup').to.equal(0);
        expect(listener.metrics()).to.match(/connections_rejected_total\{reason="maxConnectionsPerAddress"\} 2\n/);

        // Every close releases its count once: a connection ended frees one place.
        first[0]?.socket.end();
        await waitUntil(() => listener.stats().active === LIMIT, 'the first connection released');
        const again = await proxied(port, from('198.51.100.7', 43_000));
        await waitUntil(() => greeted(again), 'a client from the full address served once one left');
        const overAgain = await proxied(port, from('198.51.100.7', 43_001));
        await overAgain.whenClosed();
        expect(listener.stats().rejected.maxConnectionsPerAddress).to.equal(3);

        for (const client of [...first, other, again]) client.socket.destroy();
        await waitUntil(() => listener.stats().active === 0, 'every connection released');
        expect(listener.stats().leaked).to.equal(0);
        // All places are free again (none double-released, none left counted).
        const refill: RawClient[] = [];
        for (let i = 0; i < LIMIT; i++) refill.push(await proxied(port, from('198.51.100.7', 44_000 + i)));
        await waitUntil(() => refill.every(greeted), `${LIMIT} clients from the address served again`);
        refill.forEach((client) => client.socket.destroy());
      });
    });
  }
});

describe('maxConnectionsPerAddress behind a PROXY balancer: TLS listener', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    it(`${backend} backend: over the limit, closed before TLS; a TLS client from another address is served`, async function () {
      this.timeout(20_000);
      const pki = await createTestPki();
      const running = await startListener(
        cleanup,
        { backend, credential: { key: pki.server.key, cert: pki.server.cert }, proxyProtocol: 'v2', trustedProxies: LOOPBACK, maxConnectionsPerAddress: 1 },
        greet('hi'),
      );
      const header = (source: string): Buffer => v2({ familyTransport: 0x11, addresses: inet4(source, '192.0.2.1', 5555, 443) });
      const held = proxiedTlsConnect(cleanup, running.port, header('203.0.113.5'));
      await held.receive('hi');
      const over = proxiedTlsConnect(cleanup, running.port, header('203.0.113.5'));
      await waitUntil(() => over.closed, 'the second client from that address closed');
      const other = proxiedTlsConnect(cleanup, running.port, header('203.0.113.6'));
      await other.receive('hi');
      expect(running.listener.stats().rejected.maxConnectionsPerAddress).to.equal(1);
      held.socket.destroy();
    });
  }
});
