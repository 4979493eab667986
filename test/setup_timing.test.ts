// What stats() tells of connections in setup: how many are in it now (`inSetup`), how long the
// completed ones took (`handshakeTime`, log buckets) and why the others failed (`setupFailures`).
import { expect } from 'chai';
import { DURATION_BOUNDS_MS, DurationHistogram } from '../src/duration_histogram.js';
import type { ListenerOptions } from '../src/index.js';
import { backendModes, ModeHarness } from './support/listener_modes.js';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import { Cleanup, tcpPeer, tlsPeer, waitUntil } from './support/registry_support.js';

let pki: TestPki;
before(async function () {
  this.timeout(60_000);
  pki = await createTestPki();
});

describe('DurationHistogram: each duration counts in the smallest power-of-two bucket that holds it', () => {
  it('from 1/16 ms to 16 s, and one bucket over that', () => {
    expect(DURATION_BOUNDS_MS[0]).to.equal(1 / 16);
    expect(DURATION_BOUNDS_MS.at(-1)).to.equal(16_384);
    const histogram = new DurationHistogram();
    for (const ms of [0, 0.0625, 0.07, 1, 1.5, 2, 3, 16_384, 16_385, 1e9]) histogram.record(ms);
    const { boundsMs, counts, count, sumMs } = histogram.snapshot();
    expect(counts).to.have.length(boundsMs.length + 1);
    const at = (boundMs: number): number => counts[boundsMs.indexOf(boundMs)] ?? NaN;
    expect(at(1 / 16), '0 and 1/16 ms').to.equal(2);
    expect(at(1 / 8), '0.07 ms').to.equal(1);
    expect(at(1), '1 ms').to.equal(1);
    expect(at(2), '1.5 and 2 ms').to.equal(2);
    expect(at(4), '3 ms').to.equal(1);
    expect(at(16_384)).to.equal(1);
    expect(counts.at(-1), 'over the last bound').to.equal(2);
    expect(count).to.equal(10);
    expect(sumMs).to.be.closeTo(0.0625 + 0.07 + 1 + 1.5 + 2 + 3 + 16_384 + 16_385 + 1e9, 1e-3);
  });

  it('a snapshot is a copy: later records do not change it', () => {
    const histogram = new DurationHistogram();
    const before = histogram.snapshot();
    histogram.record(1);
    expect(before.count).to.equal(0);
    expect(before.counts.every((count) => count === 0)).to.equal(true);
  });
});

describe('stats(): connections in setup, how long setups took, and why they failed', () => {
  for (const { backend, mode, label } of backendModes) {
    describe(label, () => {
      const cleanup = new Cleanup();
      const harness = new ModeHarness(mode);
      afterEach(() => cleanup.run());
      after(() => harness.close());

      it('inSetup counts the connections that have not finished their handshake', async function () {
        this.timeout(20_000);
        const options: ListenerOptions = { port: 0, host: '127.0.0.1', backend, credential: { cert: pki.server.cert, key: pki.server.key } };
        const listener = harness.tls(options, () => () => new Promise<void>(() => undefined));
        cleanup.add(() => listener.close({ gracefulTimeout: 0 }));
        const { port } = await listener.listen();

        // Two clients that send no hello stay in setup; one that completes its handshake does not.
        const silent = [await tcpPeer(port), await tcpPeer(port)];
        for (const peer of silent) cleanup.add(() => peer.destroy());
        const served = await tlsPeer(port, { ca: pki.ca.cert });
        cleanup.add(() => served.destroy());
        await waitUntil(
          () => listener.stats().active === 3 && listener.stats().inSetup === 2,
          () => `two of three connections in setup (${JSON.stringify(listener.stats())})`,
        );
        for (const peer of silent) peer.destroy();
        await waitUntil(
          () => listener.stats().active === 1 && listener.stats().inSetup === 0,
          () => `none in setup once the silent ones left (${JSON.stringify(listener.stats())})`,
        );
        // With workers too: each worker slot's setup book, merged (src/workers/setup_book.ts).
        const stats = listener.stats();
        expect(stats.handshakeTime?.count).to.equal(1);
        expect(stats.handshakeTime?.sumMs).to.be.greaterThan(0);
        expect(stats.setupFailures).to.deep.equal({ ERR_CLIENT_CLOSED: 2 });
      });
    });
  }
});
