// maxConnectionsPerAddress's one rule on one thread, on both accept backends: the table is
// bounded and fails closed (a new address is refused and counted as addressTableFull), IPv6
// counts by its /64 (perAddressIPv6Prefix), and behind a PROXY balancer a LOCAL header (a
// health check) or a unix client is not limited. Real clients on loopback: many source
// addresses from 127.0.0.0/8 (Linux routes all of it to lo), real PROXY headers.
import net from 'node:net';
import { expect } from 'chai';
import { TCPListener } from '../src/tcp_listener.js';
import type { TCPConnectionInfo, TCPListenerOptions } from '../src/tcp_listener.js';
import type { ListenerDependencies, SetupFailureInfo } from '../src/listener.js';
import { inet6, unixAddresses, v2 } from './support/proxy_headers.js';
import { BACKENDS, useCleanup } from './support/tls_harness.js';
import type { ReportedError } from './support/tls_harness.js';
import { connect, waitUntil, within } from './support/sockets.js';
import type { Client } from './support/sockets.js';

/** Greets with the client's address and holds the connection until the client ends it. */
function greetAndHold(socket: net.Socket, info: TCPConnectionInfo): Promise<void> {
  socket.write(`hello ${info.remoteAddress ?? socket.remoteAddress ?? '?'}\n`);
  socket.resume();
  return new Promise((resolve) => socket.once('end', resolve));
}

describe('maxConnectionsPerAddress: one rule on one thread', function () {
  const cleanup = useCleanup();

  async function start(options: Omit<TCPListenerOptions, 'port'>, dependencies?: ListenerDependencies) {
    const errors: Array<{ error: ReportedError; info: SetupFailureInfo }> = [];
    const listener = new TCPListener({ port: 0, host: '127.0.0.1', ...options }, greetAndHold, dependencies);
    listener.on('tlsClientError', (error: ReportedError, info: SetupFailureInfo) => errors.push({ error, info }));
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the listener');
    return { listener, port, errors };
  }

  /** A client bound to `localAddress` (any of 127.0.0.0/8), optionally sending `header` first. */
  async function connectFrom(port: number, localAddress: string, header?: Buffer): Promise<Client> {
    const client = await connect(port, '127.0.0.1', undefined, localAddress);
    cleanup.add(() => client.destroy());
    if (header !== undefined) client.socket.write(header);
    return client;
  }

  const proxyV2 = (familyTransport: number, addresses?: Buffer, command: 'LOCAL' | 'PROXY' = 'PROXY'): Buffer =>
    v2({ command, familyTransport, ...(addresses !== undefined ? { addresses } : {}) });

  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      it('more distinct addresses than the table holds: the next new one is closed and counted as addressTableFull, known ones still count, a freed one makes room', async function () {
        this.timeout(20_000);
        const SIZE = 8;
        const { listener, port } = await start({ backend, maxConnectionsPerAddress: 2 }, { acceptorOptions: { addressTableSize: SIZE } });
        const held: Client[] = [];
        for (let i = 1; i <= SIZE; i++) {
          const client = await connectFrom(port, `127.0.1.${i}`);
          expect(await client.line()).to.equal(`hello 127.0.1.${i}`);
          held.push(client);
        }
        const refused = await connectFrom(port, '127.0.1.100');
        await refused.whenClosed();
        expect(refused.received, 'a new address with the table full got nothing').to.equal('');
        // An address already in the table is still counted against its limit.
        const known = await connectFrom(port, '127.0.1.1');
        expect(await known.line()).to.equal('hello 127.0.1.1');
        const over = await connectFrom(port, '127.0.1.1');
        await over.whenClosed();
        expect(over.received).to.equal('');
        await waitUntil(() => listener.stats().rejected.addressTableFull === 1 && listener.stats().rejected.maxConnectionsPerAddress === 1, () =>
          JSON.stringify(listener.stats().rejected),
        );
        expect(listener.metrics()).to.include('connections_rejected_total{reason="addressTableFull"} 1');
        // An address whose last connection ended leaves the table: a new one fits again.
        held[7]?.socket.end();
        await waitUntil(() => listener.stats().active === SIZE, 'the connection from 127.0.1.8 released');
        const next = await connectFrom(port, '127.0.1.100');
        expect(await next.line(), 'a new address once one left').to.equal('hello 127.0.1.100');
        expect(listener.stats().rejected.addressTableFull).to.equal(1);
      });

      it('behind a PROXY balancer: three held v2 LOCAL connections (health checks) with maxConnectionsPerAddress 2 are all served', async function () {
        this.timeout(15_000);
        const { listener, port, errors } = await start({ backend, proxyProtocol: 'v2', trustedProxies: ['127.0.0.1'], maxConnectionsPerAddress: 2 });
        const checks: Client[] = [];
        for (let i = 0; i < 3; i++) {
          const check = await connectFrom(port, '127.0.0.1', proxyV2(0x00, undefined, 'LOCAL'));
          expect(await check.line(), `health check ${i + 1}`).to.equal('hello 127.0.0.1');
          checks.push(check);
        }
        expect(errors.map((e) => e.error.code)).to.deep.equal([]);
        expect(listener.stats().active).to.equal(3);
      });

      it('behind a PROXY balancer: three held v2 headers naming one AF_UNIX client with maxConnectionsPerAddress 2 are all served', async function () {
        this.timeout(15_000);
        const { listener, port, errors } = await start({ backend, proxyProtocol: 'v2', trustedProxies: ['127.0.0.1'], maxConnectionsPerAddress: 2 });
        for (let i = 0; i < 3; i++) {
          const client = await connectFrom(port, '127.0.0.1', proxyV2(0x31, unixAddresses('/run/client.sock', '/run/haproxy.sock')));
          expect(await client.line(), `unix client ${i + 1}`).to.match(/^hello /);
        }
        expect(errors.map((e) => e.error.code)).to.deep.equal([]);
        expect(listener.stats().active).to.equal(3);
      });

      it('behind a PROXY balancer: IPv6 clients count by their /64 by default, by the whole address with perAddressIPv6Prefix 128', async function () {
        this.timeout(15_000);
        const header = (source: string): Buffer => proxyV2(0x21, inet6(source, '2001:db8:0:0:0:0:0:1', 40_000, 443));
        const subnet = await start({ backend, proxyProtocol: 'v2', trustedProxies: ['127.0.0.1'], maxConnectionsPerAddress: 1 });
        const first = await connectFrom(subnet.port, '127.0.0.1', header('2001:db8:1:2:0:0:0:1'));
        expect(await first.line()).to.equal('hello 2001:db8:1:2::1');
        const sameSubnet = await connectFrom(subnet.port, '127.0.0.1', header('2001:db8:1:2:ffff:0:0:2'));
        await sameSubnet.whenClosed();
        expect(sameSubnet.received, 'another address of the same /64').to.equal('');
        const otherSubnet = await connectFrom(subnet.port, '127.0.0.1', header('2001:db8:1:3:0:0:0:1'));
        expect(await otherSubnet.line()).to.equal('hello 2001:db8:1:3::1');

        const whole = await start({ backend, proxyProtocol: 'v2', trustedProxies: ['127.0.0.1'], maxConnectionsPerAddress: 1, perAddressIPv6Prefix: 128 });
        const a = await connectFrom(whole.port, '127.0.0.1', header('2001:db8:1:2:0:0:0:1'));
        const b = await connectFrom(whole.port, '127.0.0.1', header('2001:db8:1:2:0:0:0:2'));
        expect([await a.line(), await b.line()]).to.deep.equal(['hello 2001:db8:1:2::1', 'hello 2001:db8:1:2::2']);
      });

      it('behind a PROXY balancer: the table bounds header clients too, and fails closed with ERR_ADDRESS_TABLE_FULL', async function () {
        this.timeout(15_000);
        const { listener, port, errors } = await start(
          { backend, proxyProtocol: 'v2', trustedProxies: ['127.0.0.1'], maxConnectionsPerAddress: 5 },
          { acceptorOptions: { addressTableSize: 2 } },
        );
        const header = (source: string): Buffer => proxyV2(0x21, inet6(source, '2001:db8:0:0:0:0:0:1', 40_000, 443));
        for (const source of ['2001:db8:a:0:0:0:0:1', '2001:db8:b:0:0:0:0:1']) {
          expect(await (await connectFrom(port, '127.0.0.1', header(source))).line()).to.match(/^hello 2001:db8:/);
        }
        const refused = await connectFrom(port, '127.0.0.1', header('2001:db8:c:0:0:0:0:1'));
        await refused.whenClosed();
        expect(refused.received).to.equal('');
        await waitUntil(() => errors.length === 1, 'the refusal reported');
        expect(errors[0]?.error.code).to.equal('ERR_ADDRESS_TABLE_FULL');
        expect(listener.stats().rejected.addressTableFull).to.equal(1);
      });
    });
  }
});
