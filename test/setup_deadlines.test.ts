// The listener's setup deadlines: one queue and one timer for every connection's
// handshakeTimeout. Each deadline expires once, in order, unless cancelled, and the queue does
// not keep what it passed.
import { expect } from 'chai';
import { SetupDeadlines } from '../src/tls/setup_deadlines.js';
import { delay, waitUntil } from './support/sockets.js';

describe('setup deadlines: one timer for every connection of a listener', function () {
  it('expires each deadline once, in the order they were set, and never a cancelled one', async function () {
    const deadlines = new SetupDeadlines(40);
    const expired: number[] = [];
    deadlines.add(() => expired.push(1));
    await delay(10);
    const second = deadlines.add(() => expired.push(2));
    deadlines.add(() => expired.push(3));
    SetupDeadlines.cancel(second);
    await waitUntil(() => expired.length === 2, 'two deadlines to expire');
    expect(expired).to.deep.equal([1, 3]);
    await delay(60);
    expect(expired).to.deep.equal([1, 3]);
    expect(deadlines.size).to.equal(0);
  });

  it('a deadline set after the timer ran re-arms it; cancelled entries leave the queue when the timer passes them', async function () {
    const deadlines = new SetupDeadlines(20);
    let fired = 0;
    for (let i = 0; i < 100; i++) SetupDeadlines.cancel(deadlines.add(() => fired++));
    expect(deadlines.size).to.equal(100);
    await waitUntil(() => deadlines.size === 0, 'the cancelled deadlines to leave the queue');
    expect(fired).to.equal(0);
    deadlines.add(() => fired++);
    await waitUntil(() => fired === 1, 'a deadline set later to expire');
    expect(deadlines.size).to.equal(0);
  });

  it('does not fire a deadline before its time', async function () {
    const deadlines = new SetupDeadlines(50);
    const set = performance.now();
    let firedAt = 0;
    deadlines.add(() => (firedAt = performance.now()));
    await waitUntil(() => firedAt > 0, 'the deadline to expire');
    expect(firedAt - set).to.be.at.least(50);
  });
});
