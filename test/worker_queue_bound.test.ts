// A worker's queue has a high-water mark (native/dispatch_state.h: 4 batches): with every
// worker's loop stalled, the accept thread stops accepting at the marks and the kernel's
// backlog holds the other clients, instead of turning the backlog into open descriptors until
// the process runs out of them. Once the workers run again, every client is served.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BroadcastChannel } from 'node:worker_threads';
import { expect } from 'chai';
import { nativeAvailable } from '../src/index.js';
import { WorkersListener } from '../src/workers/worker_listener.js';
import { compiledFixture } from './support/paths.js';
import { Cleanup, descriptorsOnPort, tcpPeer, waitUntil } from './support/registry_support.js';
import type { Peer } from './support/registry_support.js';

const WORKERS = 2;
const BATCH_LIMIT = 4;
/** The mark: kQueueBatches (4) batches of BATCH_LIMIT. */
const QUEUE_MARK = 4 * BATCH_LIMIT;
const CLIENTS = 100;

/** The kernel's accept queue of the listening socket on `port` (rx_queue of a LISTEN entry). */
function backlogOf(port: number): number {
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const [, local, , state, queues] = line.trim().split(/\s+/);
      if (local === undefined || queues === undefined || state !== '0A') continue;
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) !== port) continue;
      return parseInt(queues.slice(queues.indexOf(':') + 1), 16);
    }
  }
  return 0;
}

describe("workers: a worker's queue stops at its high-water mark while the worker's loop is stalled", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  before(function () {
    if (!nativeAvailable() || process.platform !== 'linux') this.skip();
  });

  it(`${CLIENTS} clients, ${WORKERS} stalled workers: the accepted descriptors stay within the marks, all are served after`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-queue-bound-'));
    cleanup.add(() => fs.rmSync(dir, { recursive: true, force: true }));
    const releaseFile = path.join(dir, 'release');
    // Released in cleanup too, so a failing test does not leave the workers blocked.
    cleanup.add(() => fs.writeFileSync(releaseFile, ''));
    const channelName = `ntl-queue-bound-${process.pid}`;
    const channel = new BroadcastChannel(channelName);
    cleanup.add(() => channel.close());
    const stalled = new Set<number>();
    channel.onmessage = (event: unknown) => {
      const { stalled: thread } = (event as { data: { stalled: number } }).data;
      stalled.add(thread);
    };

    const listener = new WorkersListener(
      'tcp',
      { port: 0, host: '127.0.0.1', backlog: 511 },
      {},
      { count: WORKERS, module: compiledFixture('stalling_worker_handler'), workerData: { releaseFile, channel: channelName } },
      { batchLimit: BATCH_LIMIT },
    );
    cleanup.add(() => listener.close());
    const { port } = await listener.listen();

    const peers: Peer[] = [];
    cleanup.add(() => {
      for (const peer of peers) peer.destroy();
    });
    // One client for each worker first: each stalls its worker's loop in the handler.
    for (let i = 0; i < WORKERS; i++) peers.push(await tcpPeer(port));
    await waitUntil(() => stalled.size === WORKERS, () => `every worker to stall (stalled: ${stalled.size})`);

    for (let i = WORKERS; i < CLIENTS; i++) peers.push(await tcpPeer(port));
    // Every client is connected: each is accepted or waits in the kernel's backlog. Once the
    // two add up, the accept thread has done all it will while the workers are stalled.
    await waitUntil(
      () => listener.stats().accepted + backlogOf(port) === CLIENTS,
      () => `every client to be accepted or in the backlog (accepted ${listener.stats().accepted}, backlog ${backlogOf(port)})`,
    );
    const accepted = descriptorsOnPort(port, 'connections');
    expect(accepted.length, 'descriptors of accepted connections while the workers are stalled').to.be.at.most(WORKERS * QUEUE_MARK);
    expect(listener.stats().accepted).to.be.at.most(WORKERS * QUEUE_MARK);

    fs.writeFileSync(releaseFile, '');
    await waitUntil(
      () => peers.every((peer) => peer.received === 'served\n'),
      () => `every client to be served (${peers.filter((peer) => peer.received === 'served\n').length} of ${CLIENTS})`,
      30_000,
    );
    expect(listener.stats().accepted).to.equal(CLIENTS);
  });
});
