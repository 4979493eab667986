// audit() with `workers`: the worker threads share the process's descriptor table, so the main
// thread checks the union of every worker's registry against it.
import net from 'node:net';
import { once } from 'node:events';
import { expect } from 'chai';
import { createLocalTCPListener } from '../src/index.js';
import type { WorkersListener } from '../src/index.js';
import type { WorkersHandlerConfig } from './fixtures/workers_handler.js';
import { compiledFixture } from './support/paths.js';
import { Cleanup, closeServer, connect, handleFd, waitUntil, within } from './support/sockets.js';
import type { Client } from './support/sockets.js';

const handlerModule = compiledFixture('workers_handler');

describe("workers: audit() checks every worker's registry against the process's descriptors", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('20 connections held by 2 workers are all tracked; a socket on the port that no worker holds is reported untracked', async function () {
    this.timeout(30_000);
    const listener: WorkersListener = createLocalTCPListener({
      port: 0,
      host: '127.0.0.1',
      workers: { count: 2, module: handlerModule, workerData: { mode: 'hold' } satisfies WorkersHandlerConfig },
    });
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the workers to start', 10_000);
    const clients: Client[] = await Promise.all(Array.from({ length: 20 }, () => connect(port)));
    for (const c of clients) cleanup.add(() => c.destroy());
    await Promise.all(clients.map((c) => c.line()));
    expect(listener.stats().workers.every((w) => w.active > 0), 'both workers hold some').to.equal(true);
    expect(await listener.audit()).to.deep.equal({ tracked: 20, closedButTracked: [], untracked: [] });

    // A connection of this process whose local port is the listener's (bound on another
    // loopback address) that no worker tracks: what a leaked descriptor looks like to audit().
    const server = net.createServer((socket) => cleanup.add(() => socket.destroy()));
    server.listen(0, '127.0.0.1');
    await within(once(server, 'listening'), 'a server to connect the stray to');
    cleanup.add(() => closeServer(server));
    const otherPort = (server.address() as net.AddressInfo).port;
    const stray = net.connect({ host: '127.0.0.1', port: otherPort, localAddress: '127.0.0.2', localPort: port });
    cleanup.add(() => stray.destroy());
    await within(once(stray, 'connect'), 'the stray connection');
    const strayFd = handleFd(stray);
    const audit = await listener.audit();
    expect(audit.tracked).to.equal(20);
    expect(audit.untracked).to.deep.equal([strayFd]);
    stray.destroy();
    await waitUntil(() => stray.destroyed, 'the stray to close');
  });
});
