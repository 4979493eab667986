// The PROXY protocol with `workers`: the stage runs in each worker, trustedProxies is checked
// against the load balancer's address there, and the rejections reach the main thread's books.
// maxConnectionsPerAddress counts each header's client for the listener as a whole.
import { expect } from 'chai';
import { createLocalTCPListener } from '../src/index.js';
import type { WorkersListener } from '../src/index.js';
import type { WorkersHandlerConfig } from './fixtures/workers_handler.js';
import { compiledFixture } from './support/paths.js';
import { v1 } from './support/proxy_headers.js';
import { Cleanup, connect, waitUntil, within } from './support/sockets.js';
import type { Client } from './support/sockets.js';

const handlerModule = compiledFixture('workers_handler');

async function startProxied(cleanup: Cleanup, trustedProxies: string[]): Promise<{ listener: WorkersListener; port: number }> {
  const listener = createLocalTCPListener({
    port: 0,
    proxyProtocol: 'v1',
    trustedProxies,
    workers: { count: 2, module: handlerModule, workerData: { mode: 'greet', showPeer: true } satisfies WorkersHandlerConfig },
  });
  cleanup.add(() => listener.close());
  const { port } = await within(listener.listen(), 'the workers to start', 10_000);
  return { listener, port };
}

async function proxied(cleanup: Cleanup, port: number, client: string): Promise<Client> {
  const connection = await connect(port);
  cleanup.add(() => connection.destroy());
  connection.socket.write(v1(`PROXY TCP4 ${client} 127.0.0.1 40000 80`));
  return connection;
}

describe('workers: proxyProtocol and trustedProxies apply in every worker', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('from a trusted proxy: both workers serve the client named by the header', async function () {
    this.timeout(30_000);
    const { listener, port } = await startProxied(cleanup, ['127.0.0.1']);
    const greetings: string[] = [];
    for (let i = 1; i <= 6; i++) greetings.push(await (await proxied(cleanup, port, `203.0.113.${i}`)).line());
    expect(greetings.map((g) => g.split(' ')[2])).to.deep.equal([1, 2, 3, 4, 5, 6].map((i) => `203.0.113.${i}`));
    expect(new Set(greetings.map((g) => g.split(' ')[0])).size, 'served by both workers').to.equal(2);
    await waitUntil(() => listener.stats().closed === 6, 'every connection to close');
    expect(listener.stats().proxyProtocol).to.deep.equal({ invalid: 0, untrusted: 0, healthChecks: 0 });
  });

  it("from a peer not in trustedProxies: refused by both workers, and counted in the main thread's books", async function () {
    this.timeout(30_000);
    const { listener, port } = await startProxied(cleanup, ['10.9.9.9']);
    const untrusted = await Promise.all([1, 2, 3, 4].map((i) => proxied(cleanup, port, `203.0.113.${i}`)));
    await Promise.all(untrusted.map((c) => c.whenClosed()));
    expect(untrusted.map((c) => c.received)).to.deep.equal(['', '', '', '']);
    await waitUntil(() => listener.stats().proxyProtocol.untrusted === 4, () => `4 untrusted (${JSON.stringify(listener.stats().proxyProtocol)})`);
    expect(listener.stats().workers.every((w) => w.accepted > 0), 'both workers refused some').to.equal(true);
    expect(listener.stats().leaked).to.equal(0);
  });
});

describe('workers: maxConnectionsPerAddress behind a PROXY balancer counts header clients for the listener as a whole', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('limit 4 with 2 workers: a 5th connection from one header client is closed whichever worker reads it; another client is served; one closed frees a place', async function () {
    this.timeout(30_000);
    const listener: WorkersListener = createLocalTCPListener({
      port: 0,
      proxyProtocol: 'v1',
      trustedProxies: ['127.0.0.1'],
      maxConnectionsPerAddress: 4,
      workers: { count: 2, module: handlerModule, workerData: { mode: 'hold', showPeer: true } satisfies WorkersHandlerConfig },
    });
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the workers to start', 10_000);
    const held: Client[] = [];
    for (let i = 0; i < 4; i++) {
      const client = await proxied(cleanup, port, '198.51.100.7');
      expect(await client.line()).to.match(/ 198\.51\.100\.7$/);
      held.push(client);
    }
    // Two each: a per-worker count would let a 5th (and 6th) in.
    expect(listener.stats().workers.map((w) => w.active)).to.deep.equal([2, 2]);
    const over = await Promise.all([proxied(cleanup, port, '198.51.100.7'), proxied(cleanup, port, '198.51.100.7')]);
    await Promise.all(over.map((c) => c.whenClosed()));
    expect(over.map((c) => c.received), 'the ones over the limit got nothing').to.deep.equal(['', '']);
    await waitUntil(() => listener.stats().rejected.maxConnectionsPerAddress === 2, () => `2 rejected (${listener.stats().rejected.maxConnectionsPerAddress})`);
    const other = await proxied(cleanup, port, '198.51.100.8');
    expect(await other.line()).to.match(/ 198\.51\.100\.8$/);
    held[0]?.socket.end();
    await waitUntil(() => listener.stats().active === 4, 'the first connection released');
    const again = await proxied(cleanup, port, '198.51.100.7');
    expect(await again.line(), 'a place freed serves the client again').to.match(/ 198\.51\.100\.7$/);
    expect(listener.metrics()).to.include('native_tls_listener_connections_rejected_total{reason="maxConnectionsPerAddress"} 2');
  });
});
