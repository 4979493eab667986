// maxConnectionsPerAddress's one rule with workers: the accept thread's table (the same C++
// class as on one thread) is bounded and fails closed, and behind a PROXY balancer a LOCAL
// header or a unix client is not limited, as on one thread. Real clients on loopback.
import { expect } from 'chai';
import { createLocalTCPListener } from '../src/index.js';
import type { WorkersListener } from '../src/index.js';
import { WorkersListener as WorkersListenerClass } from '../src/workers/worker_listener.js';
import type { WorkersHandlerConfig } from './fixtures/workers_handler.js';
import { compiledFixture } from './support/paths.js';
import { inet4, inet6, unixAddresses, v2 } from './support/proxy_headers.js';
import { Cleanup, connect, waitUntil, within } from './support/sockets.js';
import type { Client } from './support/sockets.js';

const handlerModule = compiledFixture('workers_handler');
const hold = { count: 2, module: handlerModule, workerData: { mode: 'hold', showPeer: true } satisfies WorkersHandlerConfig };

describe('workers: maxConnectionsPerAddress follows the same rule as on one thread', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function connectFrom(port: number, localAddress: string, header?: Buffer): Promise<Client> {
    const client = await connect(port, '127.0.0.1', undefined, localAddress);
    cleanup.add(() => client.destroy());
    if (header !== undefined) client.socket.write(header);
    return client;
  }

  async function started(listener: WorkersListener): Promise<number> {
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the workers to start', 10_000);
    return port;
  }

  const proxiedListener = (): WorkersListener =>
    createLocalTCPListener({ port: 0, proxyProtocol: 'v2', trustedProxies: ['127.0.0.1'], maxConnectionsPerAddress: 2, workers: hold });

  it('three held PROXY v2 LOCAL connections (health checks) with maxConnectionsPerAddress 2 are all served', async function () {
    this.timeout(30_000);
    const listener = proxiedListener();
    const port = await started(listener);
    for (let i = 0; i < 3; i++) {
      const check = await connectFrom(port, '127.0.0.1', v2({ command: 'LOCAL', familyTransport: 0x00 }));
      expect(await check.line(), `health check ${i + 1}`).to.match(/^\d+ \d+ 127\.0\.0\.1$/);
    }
    expect(listener.stats().rejected.maxConnectionsPerAddress).to.equal(0);
  });

  it('three held PROXY v2 headers naming one AF_UNIX client with maxConnectionsPerAddress 2 are all served', async function () {
    this.timeout(30_000);
    const listener = proxiedListener();
    const port = await started(listener);
    for (let i = 0; i < 3; i++) {
      const client = await connectFrom(port, '127.0.0.1', v2({ familyTransport: 0x31, addresses: unixAddresses('/run/client.sock', '/run/haproxy.sock') }));
      expect(await client.line(), `unix client ${i + 1}`).to.match(/^\d+ \d+ /);
    }
    expect(listener.stats().rejected.maxConnectionsPerAddress).to.equal(0);
  });

  it('behind a PROXY balancer, an IPv4-mapped client counts with its IPv4 form in the listener-wide table', async function () {
    this.timeout(30_000);
    const listener = createLocalTCPListener({ port: 0, proxyProtocol: 'v2', trustedProxies: ['127.0.0.1'], maxConnectionsPerAddress: 1, workers: hold });
    const port = await started(listener);
    const v4 = await connectFrom(port, '127.0.0.1', v2({ familyTransport: 0x11, addresses: inet4('198.51.100.9', '192.0.2.1', 40_000, 443) }));
    expect(await v4.line()).to.match(/ 198\.51\.100\.9$/);
    const mapped = await connectFrom(port, '127.0.0.1', v2({ familyTransport: 0x21, addresses: inet6('0:0:0:0:0:ffff:c633:6409', '2001:db8:0:0:0:0:0:1', 40_001, 443) }));
    await mapped.whenClosed();
    expect(mapped.received, '::ffff:198.51.100.9 is 198.51.100.9').to.equal('');
    await waitUntil(() => listener.stats().rejected.maxConnectionsPerAddress === 1, () => JSON.stringify(listener.stats().rejected));
  });

  it("the accept thread's table: more distinct addresses than it holds, the next new one is closed and counted as addressTableFull", async function () {
    this.timeout(30_000);
    const SIZE = 6;
    const listener = new WorkersListenerClass('tcp', { port: 0, host: '127.0.0.1', maxConnectionsPerAddress: 2 }, {}, hold, { addressTableSize: SIZE });
    const port = await started(listener);
    const held: Client[] = [];
    for (let i = 1; i <= SIZE; i++) {
      const client = await connectFrom(port, `127.0.2.${i}`);
      expect(await client.line()).to.match(/^\d+ \d+/);
      held.push(client);
    }
    const refused = await connectFrom(port, '127.0.2.100');
    await refused.whenClosed();
    expect(refused.received, 'a new address with the table full got nothing').to.equal('');
    await waitUntil(() => listener.stats().rejected.addressTableFull === 1, () => JSON.stringify(listener.stats().rejected));
    expect(listener.metrics()).to.include('connections_rejected_total{reason="addressTableFull"} 1');
    held[0]?.socket.end();
    await waitUntil(() => listener.stats().active === SIZE - 1, 'the connection from 127.0.2.1 released');
    const next = await connectFrom(port, '127.0.2.100');
    expect(await next.line(), 'a new address once one left').to.match(/^\d+ \d+/);
  });

  it('behind a PROXY balancer, the listener-wide table fails closed for header clients too', async function () {
    this.timeout(30_000);
    const listener = new WorkersListenerClass(
      'tcp',
      { port: 0, host: '127.0.0.1', maxConnectionsPerAddress: 3, proxyProtocol: 'v2' },
      { proxyProtocol: 'v2', trustedProxies: ['127.0.0.1'], maxConnectionsPerAddress: 3 },
      hold,
      { addressTableSize: 2 },
    );
    const port = await started(listener);
    const header = (source: string): Buffer => v2({ familyTransport: 0x11, addresses: inet4(source, '192.0.2.1', 40_000, 443) });
    for (const source of ['198.51.100.1', '198.51.100.2']) {
      expect(await (await connectFrom(port, '127.0.0.1', header(source))).line()).to.match(/ 198\.51\.100\.\d$/);
    }
    const refused = await connectFrom(port, '127.0.0.1', header('198.51.100.3'));
    await refused.whenClosed();
    expect(refused.received).to.equal('');
    await waitUntil(() => listener.stats().rejected.addressTableFull === 1, () => JSON.stringify(listener.stats().rejected));
  });
});
