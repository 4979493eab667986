// The stats channel the CLI's worker threads use to show the listener's statistics: the main
// thread answers requests with a fresh snapshot; a worker whose request is not answered in time
// serves the latest snapshot it saw, or says that it has none. Real BroadcastChannels (every
// instance gets the others' messages, in any thread; here, one thread plays both sides).
import { expect } from 'chai';
import type { ListenerStats } from '../src/index.js';
import { answerStatsRequests, MainThreadStats } from '../src/cli/stats_channel.js';

function statsWith(accepted: number): ListenerStats {
  return { accepted } as unknown as ListenerStats;
}

describe('CLI stats channel: a worker asks, the main thread answers, a late main thread leaves the latest', function () {
  const closers: Array<{ close(): void }> = [];
  afterEach(function () {
    for (const closer of closers.splice(0)) closer.close();
  });

  it('answers each request with the statistics of that moment, and the metrics when asked', async function () {
    let accepted = 0;
    closers.push(answerStatsRequests({ stats: () => statsWith(++accepted), metrics: () => `accepted ${accepted}\n` }));
    const worker = new MainThreadStats(2000);
    closers.push(worker);
    expect((await worker.stats()).accepted).to.equal(1);
    expect((await worker.stats()).accepted).to.equal(2);
    expect(await worker.metrics()).to.equal('accepted 3\n');
  });

  it('serves the latest snapshot when the main thread does not answer in time, and fails without one', async function () {
    const answering = answerStatsRequests({ stats: () => statsWith(7), metrics: () => 'seven\n' });
    const worker = new MainThreadStats(200);
    closers.push(worker, answering);
    expect((await worker.stats()).accepted).to.equal(7);
    expect(await worker.metrics()).to.equal('seven\n');
    answering.close();
    expect((await worker.stats()).accepted).to.equal(7);
    expect(await worker.metrics()).to.equal('seven\n');
    const fresh = new MainThreadStats(200);
    closers.push(fresh);
    let failure: Error | undefined;
    await fresh.stats().catch((error: Error) => (failure = error));
    expect(failure?.message).to.equal('the main thread did not answer within 200 ms');
  });
});
