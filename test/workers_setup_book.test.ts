// With `workers`, why setups failed (by code) and how long the completed ones took reach the
// main thread's stats() through each worker slot's setup book, a SharedArrayBuffer of fixed
// size (src/workers/setup_book.ts): its bounds, its snapshots while a worker thread writes, and
// a real listener whose workers serve TLS clients, plain-text clients and clients that leave.
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { Worker } from 'node:worker_threads';
import { expect } from 'chai';
import { createListener, ErrorCodes } from '../src/index.js';
import type { WorkerEvent, WorkersListener } from '../src/index.js';
import { DurationHistogram } from '../src/duration_histogram.js';
import { CODE_SLOTS, OTHER_CODES, SETUP_BOOK_BYTES, SetupBookReader, SetupBookWriter } from '../src/workers/setup_book.js';
import type { WorkersHandlerConfig } from './fixtures/workers_handler.js';
import { compiledFixture } from './support/paths.js';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import { Cleanup, waitUntil, within } from './support/sockets.js';

describe('setup book: bounded memory, one writer, consistent snapshots', () => {
  it('counts as a registry does: failures by code, durations in the same buckets', () => {
    const reader = new SetupBookReader();
    const writer = new SetupBookWriter(reader.buffer);
    const histogram = new DurationHistogram();
    for (const ms of [0, 0.07, 1.5, 2, 3, 16_385, 1e9]) {
      writer.recordDuration(ms);
      histogram.record(ms);
    }
    for (const code of ['ERR_CLIENT_CLOSED', 'ECONNRESET', 'ERR_CLIENT_CLOSED']) writer.countFailure(code);
    const { setupFailures, handshakeTime } = reader.read();
    expect(setupFailures).to.deep.equal({ ERR_CLIENT_CLOSED: 2, ECONNRESET: 1 });
    expect(handshakeTime).to.deep.equal(histogram.snapshot());
  });

  it(`names ${CODE_SLOTS} codes; later ones, and codes too long or not printable ASCII, count as '${OTHER_CODES}'`, () => {
    const reader = new SetupBookReader();
    const writer = new SetupBookWriter(reader.buffer);
    for (let i = 0; i < CODE_SLOTS + 5; i++) writer.countFailure(`ERR_${i}`);
    writer.countFailure('ERR_'.padEnd(100, 'X'));
    writer.countFailure('ERR_É');
    writer.countFailure('ERR_0');
    const { setupFailures } = reader.read();
    expect(Object.keys(setupFailures)).to.have.length(CODE_SLOTS + 1);
    expect(setupFailures.ERR_0).to.equal(2);
    expect(setupFailures[`ERR_${CODE_SLOTS - 1}`]).to.equal(1);
    expect(setupFailures[`ERR_${CODE_SLOTS}`]).to.equal(undefined);
    expect(setupFailures[OTHER_CODES]).to.equal(5 + 2);
    expect(reader.buffer.byteLength, 'a few KiB, whatever was counted').to.equal(SETUP_BOOK_BYTES).and.below(4096);
  });

  it("a replacement writer goes on from its predecessor's names and counts, even one stopped inside a write", () => {
    const reader = new SetupBookReader();
    const first = new SetupBookWriter(reader.buffer);
    first.countFailure('ERR_CLIENT_CLOSED');
    first.recordDuration(1);
    // What terminate() can leave: the sequence word odd, as inside a write (setup_book.ts, seq).
    Atomics.add(new Int32Array(reader.buffer, 0, 1), 0, 1);
    expect(reader.read().setupFailures, 'readable meanwhile').to.deep.equal({ ERR_CLIENT_CLOSED: 1 });
    const second = new SetupBookWriter(reader.buffer);
    second.countFailure('ERR_CLIENT_CLOSED');
    second.countFailure('ECONNRESET');
    second.recordDuration(1);
    const { setupFailures, handshakeTime } = reader.read();
    expect(setupFailures).to.deep.equal({ ERR_CLIENT_CLOSED: 2, ECONNRESET: 1 });
    expect(handshakeTime.count).to.equal(2);
    expect(Atomics.load(new Int32Array(reader.buffer, 0, 1), 0) % 2, 'the sequence word even again').to.equal(0);
  });

  it('a buffer of another size is refused with ERR_INVALID_OPTION', () => {
    expect(() => new SetupBookWriter(new SharedArrayBuffer(SETUP_BOOK_BYTES - 8))).to.throw().with.property('code', ErrorCodes.INVALID_OPTION);
  });

  it('snapshots read while a worker thread writes are whole: count = Σ buckets = sum / 1.5', async function () {
    this.timeout(20_000);
    const reader = new SetupBookReader();
    const moduleUrl = new URL('../src/workers/setup_book.js', import.meta.url).href;
    const writes = 200_000;
    // Bursts of back-to-back writes (a read during one sees them move), with gaps between.
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       import(workerData.moduleUrl).then(({ SetupBookWriter }) => {
         const writer = new SetupBookWriter(workerData.buffer);
         for (let i = 0; i < workerData.writes; i++) {
           writer.recordDuration(1.5);
           if (i % 2000 !== 0) continue;
           const until = performance.now() + 0.1;
           while (performance.now() < until);
         }
       });`,
      { eval: true, workerData: { moduleUrl, buffer: reader.buffer, writes } },
    );
    const exited = once(worker, 'exit');
    let reads = 0;
    let done = false;
    void exited.then(() => (done = true));
    while (!done) {
      const { handshakeTime } = reader.read();
      const inBuckets = handshakeTime.counts.reduce((sum, count) => sum + count, 0);
      expect(inBuckets, `snapshot ${reads}`).to.equal(handshakeTime.count);
      expect(handshakeTime.sumMs, `snapshot ${reads}`).to.equal(handshakeTime.count * 1.5);
      reads++;
      // Let the exit event in now and then.
      if (reads % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(reader.read().handshakeTime.count).to.equal(writes);
    expect(reads).to.be.greaterThan(0);
  });
});

const handlerModule = compiledFixture('workers_handler');

/** A client and how it ends: a full handshake, plain text instead of a hello, or a close before one. */
function client(port: number, pki: TestPki, kind: 'tls' | 'plain' | 'leave'): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      const socket =
        kind === 'tls'
          ? tls.connect({ port, host: '127.0.0.1', ca: pki.ca.cert, servername: 'localhost' })
          : net.connect({ port, host: '127.0.0.1' }, () => (kind === 'plain' ? socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n') : socket.end()));
      socket.on('error', () => undefined);
      socket.resume();
      socket.once('close', () => resolve());
    }),
    `a ${kind} client`,
  );
}

async function clients(port: number, pki: TestPki, counts: Record<'tls' | 'plain' | 'leave', number>): Promise<void> {
  const all: Array<Promise<void>> = [];
  for (const [kind, count] of Object.entries(counts) as Array<['tls' | 'plain' | 'leave', number]>) {
    for (let i = 0; i < count; i++) all.push(client(port, pki, kind));
  }
  await Promise.all(all);
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

describe('workers: stats() counts setup failures by code and handshake times, per worker and in all', () => {
  const cleanup = new Cleanup();
  let pki: TestPki;
  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
  });
  afterEach(() => cleanup.run());

  it('TLS, plain-text and leaving clients on two workers, then across a worker that crashed', async function () {
    this.timeout(60_000);
    const listener: WorkersListener = createListener({
      host: '127.0.0.1',
      port: 0,
      credential: pki.server,
      workers: { count: 2, module: handlerModule, workerData: { mode: 'greet' } satisfies WorkersHandlerConfig },
    });
    cleanup.add(() => listener.close());
    const events: WorkerEvent[] = [];
    listener.on('worker', (event: WorkerEvent) => events.push(event));
    const { port } = await within(listener.listen(), 'the workers to start', 10_000);

    await clients(port, pki, { tls: 30, plain: 8, leave: 6 });
    await waitUntil(() => listener.stats().closed === 44, () => `44 connections closed (${JSON.stringify(listener.stats())})`);
    const stats = listener.stats();
    // The code OpenSSL gives an HTTP request sent where a TLS hello belongs.
    expect(stats.setupFailures).to.deep.equal({ ERR_SSL_HTTP_REQUEST: 8, ERR_CLIENT_CLOSED: 6 });
    expect(stats.handshakes).to.deep.include({ completed: 30, failed: 14 });
    expect(stats.handshakeTime?.count, 'every completed handshake timed').to.equal(30);
    expect(sum(stats.handshakeTime?.counts ?? [])).to.equal(30);
    expect(stats.handshakeTime?.sumMs).to.be.greaterThan(0);
    // Each worker's own, adding up to the totals.
    for (const worker of stats.workers) {
      expect(worker.handshakeTime.count, `worker ${worker.id}: one time per handshake`).to.equal(worker.handshakes.completed);
      expect(sum(Object.values(worker.setupFailures)), `worker ${worker.id}: one code per failure`).to.equal(worker.handshakes.failed + worker.handshakes.timedOut);
    }
    expect(sum(stats.workers.map((w) => w.setupFailures.ERR_SSL_HTTP_REQUEST ?? 0))).to.equal(8);
    expect(sum(stats.workers.map((w) => w.handshakeTime.sumMs))).to.be.closeTo(stats.handshakeTime?.sumMs ?? NaN, 1e-6);
    // Prometheus has them too.
    const text = listener.metrics();
    expect(text).to.include('native_tls_listener_setup_failures_total{code="ERR_SSL_HTTP_REQUEST"} 8');
    expect(text).to.include('native_tls_listener_handshake_duration_seconds_count 30');

    // A worker that dies: its replacement adds to the slot's counts, which stay.
    const victim = tls.connect({ port, host: '127.0.0.1', ca: pki.ca.cert, servername: 'localhost' });
    victim.on('error', () => undefined);
    await once(victim, 'secureConnect');
    victim.write('crash\n');
    await waitUntil(() => events.filter((e) => e.type === 'online').length === 3, 'the crashed worker to be replaced');
    await clients(port, pki, { tls: 10, plain: 4, leave: 0 });
    await waitUntil(() => listener.stats().closed === 59, () => `59 connections closed (${JSON.stringify(listener.stats())})`);
    const after = listener.stats();
    expect(after.setupFailures).to.deep.equal({ ERR_SSL_HTTP_REQUEST: 12, ERR_CLIENT_CLOSED: 6 });
    expect(after.handshakeTime?.count).to.equal(41);
    expect(after.handshakes.completed).to.equal(41);
    expect(after.workers.map((w) => w.starts).sort()).to.deep.equal([1, 2]);
    expect(after.leaked).to.equal(0);
  });
});
