// Real descriptor exhaustion: a listener in a child process limited to 64 descriptors
// (prlimit sets soft and hard limit, so Node cannot raise it at startup) holds every
// connection it accepts while more clients arrive than it has descriptors for.
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import type { ListenerStats } from '../src/index.js';
import { ChildListener } from './support/child_listener.js';
import { cpuTimeMs } from './support/proc.js';
import { Cleanup, connect, delay, waitUntil } from './support/sockets.js';
import type { Client } from './support/sockets.js';

const DESCRIPTOR_LIMIT = 64;
/**
 * With workers, each worker thread loads the whole listener's modules at startup, several
 * files open at once: 64 descriptors are not always enough for two of them to start at all
 * (listen() then fails with EMFILE, cleanly). They get twice as many.
 */
const WORKERS_DESCRIPTOR_LIMIT = 128;

/** Each backend, and the accept thread feeding two workers (which pauses as the native one). */
const modes = [
  { backend: 'native', workers: undefined, label: 'native backend', limit: DESCRIPTOR_LIMIT },
  { backend: 'js', workers: undefined, label: 'js backend', limit: DESCRIPTOR_LIMIT },
  { backend: 'native', workers: 2, label: 'native backend, 2 workers', limit: WORKERS_DESCRIPTOR_LIMIT },
] as const;
const MEASURE_MS = 1000;
/** A busy loop would use ~100% of a core; an idle, paused listener a few percent at most. */
const MAX_PAUSED_CPU_SHARE = 0.2;

function prlimitAvailable(): boolean {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function statsOf(child: ChildListener): Promise<ListenerStats> {
  return (await child.request({ cmd: 'stats' }, 'stats')).stats;
}

describe('descriptor exhaustion: the listener stays up, idles while it cannot accept, and recovers', () => {
  for (const { backend, workers, label, limit } of modes) {
    const FLOOD = limit * 2 + 22; // well over the limit
    describe(label, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      it(`survives ${FLOOD} held clients with ${limit} descriptors, then serves new ones`, async function () {
        if (!prlimitAvailable()) this.skip();
        this.timeout(30_000);
        const child = ChildListener.start(
          { backend, host: '127.0.0.1', workers, mode: 'hold', acceptorOptions: { pauseMinMs: 5, pauseMaxMs: 200 } },
          { wrapper: ['prlimit', `--nofile=${limit}:${limit}`] },
        );
        cleanup.add(() => child.stop());
        const { port, pid } = await child.waitFor('listening');

        const flood: Client[] = [];
        cleanup.add(() => flood.forEach((c) => c.destroy()));
        for (let i = 0; i < FLOOD; i++) flood.push(await connect(port));

        // Native: accepting pauses (and keeps pausing, with back-off) while no descriptor is free.
        // js: libuv's reserve-descriptor trick accepts what it cannot keep and closes it at once.
        if (backend === 'native') {
          await child.waitFor('acceptPaused', () => child.all('acceptPaused').length >= 3);
          for (const event of child.all('acceptPaused')) expect(event.error.code).to.be.oneOf(['EMFILE', 'ENFILE']);
        } else {
          await waitUntil(
            () => flood.every((c) => c.received !== '' || c.closed),
            'every flood client to be greeted or dropped',
          );
        }
        const held = await statsOf(child);
        expect(held.accepted, 'connections accepted before running out').to.be.within(10, limit);
        expect(held.leaked).to.equal(0);
        if (backend === 'native') {
          expect(held.active, 'every accepted connection is still held').to.equal(held.accepted);
          expect(flood.filter((c) => c.closed), 'no flood client was dropped').to.deep.equal([]);
        }

        // CPU while it cannot accept: measured from /proc/<pid>/stat over a second of wall time.
        const cpuBefore = cpuTimeMs(pid);
        const wallBefore = Date.now();
        await delay(MEASURE_MS);
        const cpuUsed = cpuTimeMs(pid) - cpuBefore;
        const wall = Date.now() - wallBefore;
        const share = cpuUsed / wall;
        console.log(
          `      ${label}: ${held.accepted} held, ${held.acceptPauses} pauses so far; ` +
            `${cpuUsed.toFixed(0)} ms CPU in ${wall} ms while exhausted (${(share * 100).toFixed(1)}%)`,
        );
        expect(share, `CPU share while exhausted (${cpuUsed} ms in ${wall} ms)`).to.be.below(MAX_PAUSED_CPU_SHARE);
        expect(child.running, child.transcript()).to.equal(true);
        expect(child.all('error'), 'the listener reported a fatal error').to.deep.equal([]);
        if (backend === 'native') {
          // Idle is not given up: the back-off timer kept trying again during the measurement.
          expect((await statsOf(child)).acceptPauses, 'pauses after the measurement').to.be.above(held.acceptPauses);
        }

        // Release: the child lets go of what it holds, the flood clients close their side. The
        // books are read again first: with workers, a descriptor the runtime freed meanwhile (a
        // worker's module files) lets the accept thread take a few more of the waiting clients,
        // and every one of them must be held and released too. The release itself frees
        // descriptors one by one, and with workers the accept thread (which runs meanwhile) takes
        // more waiting clients, which that same release lets go (CI saw 122 released of 97
        // held): so at least every held one is released, and the books below say none is left.
        const beforeRelease = await statsOf(child);
        if (backend === 'native') expect(beforeRelease.active, 'every accepted connection is still held').to.equal(beforeRelease.accepted);
        const released = await child.request({ cmd: 'release' }, 'released');
        if (workers === undefined) expect(released.count).to.equal(beforeRelease.active);
        else expect(released.count).to.be.at.least(beforeRelease.active);
        for (const c of flood) c.destroy();

        const fresh = await connect(port);
        cleanup.add(() => fresh.destroy());
        expect(await fresh.line(0, 10_000), child.transcript()).to.match(/^hello \d+$/);
        await fresh.whenClosed();

        let final = await statsOf(child);
        const deadline = Date.now() + 10_000;
        while (final.active > 0 && Date.now() < deadline) {
          await delay(50);
          final = await statsOf(child);
        }
        expect({ active: final.active, leaked: final.leaked }, child.transcript()).to.deep.equal({ active: 0, leaked: 0 });
        expect(final.accepted).to.equal(final.closed);
        expect(final.accepted).to.be.above(held.accepted);
      });
    });
  }
});

describe('descriptor exhaustion: a released connection ends the pause at once, not when the back-off timer fires', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  for (const { label, workers, limit } of modes.filter((mode) => mode.backend === 'native')) {
    it(`${label}: with a 60 s back-off, closing one held client gets the next waiting client served`, async function () {
      if (!prlimitAvailable()) this.skip();
      this.timeout(30_000);
      // The first back-off is a minute: a client served within the wait below was resumed by
      // the release, never by the timer.
      const child = ChildListener.start(
        { backend: 'native', host: '127.0.0.1', workers, mode: 'hold', acceptorOptions: { pauseMinMs: 60_000, pauseMaxMs: 60_000 } },
        { wrapper: ['prlimit', `--nofile=${limit}:${limit}`] },
      );
      cleanup.add(() => child.stop());
      const { port } = await child.waitFor('listening');
      const flood: Client[] = [];
      cleanup.add(() => flood.forEach((c) => c.destroy()));
      for (let i = 0; i < limit + 10; i++) flood.push(await connect(port));
      await child.waitFor('acceptPaused');
      const greeted = (): Client[] => flood.filter((c) => c.received.startsWith('hello'));
      const held = await statsOf(child);
      await waitUntil(() => greeted().length === held.accepted, () => `every held client greeted (${greeted().length}/${held.accepted})`);
      const waiting = flood.filter((c) => !c.received.startsWith('hello'));
      expect(waiting.length, 'clients left in the backlog').to.be.above(0);

      // One held client goes: its descriptor is released, and the acceptor resumes at once.
      greeted()[0]?.destroy();
      await waitUntil(() => waiting.some((c) => c.received.startsWith('hello')), 'a waiting client to be served after the release', 10_000);
      expect(child.all('acceptPaused').length, 'pauses: the first, and one more at most as the freed descriptor is reused').to.be.within(1, 2);
    });
  }
});
