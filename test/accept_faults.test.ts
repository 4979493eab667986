// accept() errors a loopback client cannot cause, made real by an LD_PRELOAD shim
// (test/fixtures/accept_fault_shim.c) in a child process that runs the listener. Each
// scheduled errno fails one accept call that would otherwise have found the pending client,
// which stays queued for the next call.
//
// The native backend calls accept4() from the addon; the js backend's libuv (inside the node
// binary) calls libc's accept4() too, so the shim reaches both. libuv has its own policy in
// front of ours: it ignores ECONNABORTED silently and answers EMFILE/ENFILE with its
// reserve-descriptor trick (accept the pending connection and drop it), reporting nothing.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ChildListener } from './support/child_listener.js';
import type { ChildConfig, ErrorReport } from './support/child_protocol.js';
import { LINUX_ERRNO, ORIGINAL_RETRY_SET as RETRY_SET, buildAcceptFaultShim, faultEnvironment } from './support/fault_shim.js';
import type { BuiltShim, ErrnoName, Fault, PersistentFault } from './support/fault_shim.js';
import { cpuTimeMs } from './support/proc.js';
import { Cleanup, connect, connectOutcome, delay, within } from './support/sockets.js';
import type { Client } from './support/sockets.js';

const backends = ['native', 'js'] as const;

/** The native acceptor on the listener's thread, and the accept thread feeding two workers. */
const nativeModes = [
  { label: 'native backend', workers: undefined },
  { label: 'native backend, 2 workers', workers: 2 },
] as const;

/**
 * What else accept(2) says one pending connection can fail with (EPERM: a firewall rule or
 * security module refused it), beyond the original's set: retried the same way here.
 */
const PER_CONNECTION_SET: readonly ErrnoName[] = ['EPERM', 'ETIMEDOUT', 'ENOSR', 'ESOCKTNOSUPPORT', 'EPROTONOSUPPORT'];

let shim: Promise<BuiltShim | null> | undefined;

/** The shim's path, built once for the whole file; skips the test where there is no C compiler. */
async function requireShim(context: Mocha.Context): Promise<string> {
  context.timeout(90_000); // the first call compiles
  shim ??= buildAcceptFaultShim().then((built) => {
    if (built) process.once('exit', () => built.removeSync());
    return built;
  });
  const built = await shim;
  if (!built) context.skip();
  return built.path;
}

async function startChild(
  cleanup: Cleanup,
  shimPath: string,
  config: ChildConfig,
  faults: readonly Fault[],
  persistent?: PersistentFault,
): Promise<{
  child: ChildListener;
  port: number;
  pid: number;
}> {
  const child = ChildListener.start(config, { env: faultEnvironment(shimPath, faults, persistent) });
  cleanup.add(() => child.stop());
  const listening = await child.waitFor('listening');
  return { child, port: listening.port, pid: listening.pid };
}

async function client(cleanup: Cleanup, port: number): Promise<Client> {
  const connected = await connect(port);
  cleanup.add(() => connected.destroy());
  return connected;
}

function expected(name: ErrnoName): ErrorReport {
  return { code: name, errno: LINUX_ERRNO[name], syscall: 'accept', message: '' };
}

function withoutMessage(report: ErrorReport): ErrorReport {
  return { ...report, message: '' };
}

describe('accept() errors of the retry set: retried, counted and reported, the client still served', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  for (const { label, workers } of nativeModes) {
    it(`${label}: one acceptRetry per errno (${RETRY_SET.length}), each counted in stats().acceptRetries`, async function () {
      const { child, port } = await startChild(
        cleanup,
        await requireShim(this),
        { backend: 'native', host: '127.0.0.1', workers, mode: 'serve' },
        RETRY_SET,
      );
      const c = await client(cleanup, port);
      expect(await c.line(), child.transcript()).to.equal('hello 1');
      await child.waitFor('acceptRetry', () => child.all('acceptRetry').length === RETRY_SET.length);
      const { stats } = await child.request({ cmd: 'stats' }, 'stats');

      expect(child.all('acceptRetry').map((event) => withoutMessage(event.error))).to.deep.equal(RETRY_SET.map(expected));
      expect(stats.acceptRetries).to.deep.equal(Object.fromEntries(RETRY_SET.map((name) => [name, 1])));
      expect({ accepted: stats.accepted, pauses: stats.acceptPauses }).to.deep.equal({ accepted: 1, pauses: 0 });
      expect(child.all('error')).to.deep.equal([]);
      await c.whenClosed();
    });
  }
});

describe('accept() errors of one pending connection beyond the original set (EPERM, ETIMEDOUT, ...): retried like it', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  for (const { label, workers } of nativeModes) {
    it(`${label}: one acceptRetry and one count per errno (${PER_CONNECTION_SET.length}), the client served, an established connection untouched`, async function () {
      const { child, port } = await startChild(
        cleanup,
        await requireShim(this),
        { backend: 'native', host: '127.0.0.1', workers, mode: 'hold' },
        ['pass', ...PER_CONNECTION_SET],
      );
      const established = await client(cleanup, port);
      expect(await established.line(), child.transcript()).to.equal('hello 1');

      // The second client's accept fails once with each errno before it is accepted.
      const next = await client(cleanup, port);
      expect(await next.line(), child.transcript()).to.equal('hello 2');
      await child.waitFor('acceptRetry', () => child.all('acceptRetry').length === PER_CONNECTION_SET.length);
      const { stats } = await child.request({ cmd: 'stats' }, 'stats');

      expect(child.all('acceptRetry').map((event) => withoutMessage(event.error))).to.deep.equal(
        PER_CONNECTION_SET.map(expected),
      );
      expect(stats.acceptRetries).to.deep.equal(Object.fromEntries(PER_CONNECTION_SET.map((name) => [name, 1])));
      expect({ accepted: stats.accepted, active: stats.active, pauses: stats.acceptPauses }).to.deep.equal({
        accepted: 2,
        active: 2,
        pauses: 0,
      });
      expect(child.all('error')).to.deep.equal([]);
      expect(established.closed, 'the established connection is still open').to.equal(false);
      expect((await child.request({ cmd: 'release' }, 'released')).count).to.equal(2);
      await established.whenClosed();
      await next.whenClosed();
    });
  }
});

describe('a retry errno that persists (a pending connection refused again and again): accepting backs off instead of spinning', () => {
  // EPERM from a security hook leaves the connection queued, so the listening socket stays
  // readable and every accept() fails the same way: without a back-off, a busy loop.
  const MEASURE_MS = 1000;
  /** A busy loop would use ~100% of a core; a listener backing off a few percent at most. */
  const MAX_CPU_SHARE = 0.2;
  /** A busy loop fails accept() tens of thousands of times a second; backing off, a few dozen. */
  const MAX_RETRIES_WHILE_MEASURED = 1000;
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  for (const { label, workers } of nativeModes) {
    it(`${label}: EPERM on every call pauses with growing delays, idles, then serves once it stops; established connections survive`, async function () {
      this.timeout(30_000);
      const shimPath = await requireShim(this);
      const dir = await mkdtemp(path.join(os.tmpdir(), 'ntl-accept-fault-'));
      cleanup.add(() => rm(dir, { recursive: true, force: true }));
      const faulting = path.join(dir, 'faulting');
      const { child, port, pid } = await startChild(
        cleanup,
        shimPath,
        { backend: 'native', host: '127.0.0.1', workers, mode: 'hold', acceptorOptions: { pauseMinMs: 5, pauseMaxMs: 200 } },
        [],
        { errno: 'EPERM', whileExists: faulting },
      );
      const established = await client(cleanup, port);
      expect(await established.line(), child.transcript()).to.equal('hello 1');

      await writeFile(faulting, '');
      const refused = await client(cleanup, port);
      await child.waitFor('acceptRetry');
      const before = (await child.request({ cmd: 'stats' }, 'stats')).stats;

      const cpuBefore = cpuTimeMs(pid);
      const wallBefore = Date.now();
      await delay(MEASURE_MS);
      const cpuUsed = cpuTimeMs(pid) - cpuBefore;
      const wall = Date.now() - wallBefore;
      const during = (await child.request({ cmd: 'stats' }, 'stats')).stats;
      const retries = (during.acceptRetries.EPERM ?? 0) - (before.acceptRetries.EPERM ?? 0);
      console.log(
        `      ${label}: ${during.acceptRetries.EPERM} EPERM, ${during.acceptPauses} pauses so far; ` +
          `${retries} EPERM and ${cpuUsed.toFixed(0)} ms CPU in ${wall} ms while refused (${((cpuUsed / wall) * 100).toFixed(1)}%)`,
      );
      expect(cpuUsed / wall, `CPU share while every accept fails (${cpuUsed} ms in ${wall} ms)`).to.be.below(MAX_CPU_SHARE);
      expect(retries, 'accept() calls failed with EPERM during the measurement').to.be.below(MAX_RETRIES_WHILE_MEASURED);
      expect(during.acceptPauses, 'the back-off kept trying during the measurement').to.be.above(before.acceptPauses);

      const pauses = child.all('acceptPaused');
      expect([...new Set(pauses.map((event) => JSON.stringify(withoutMessage(event.error))))]).to.deep.equal([
        JSON.stringify(expected('EPERM')),
      ]);
      expect(pauses.slice(0, 6).map((event) => event.delayMs)).to.deep.equal([5, 10, 20, 40, 80, 160]);
      expect(Math.max(...pauses.map((event) => event.delayMs)), 'delays stop at pauseMaxMs').to.equal(200);
      expect(refused.received, 'the refused client is still queued, not served').to.equal('');

      await rm(faulting);
      expect(await refused.line(0, 5000), child.transcript()).to.equal('hello 2');
      const { stats } = await child.request({ cmd: 'stats' }, 'stats');
      expect({ accepted: stats.accepted, active: stats.active, leaked: stats.leaked }).to.deep.equal({
        accepted: 2,
        active: 2,
        leaked: 0,
      });
      expect(child.all('error')).to.deep.equal([]);
      expect(child.all('acceptRetry').length, 'every retried EPERM was reported').to.equal(stats.acceptRetries.EPERM);
      expect(established.closed, 'the established connection is still open').to.equal(false);
      expect((await child.request({ cmd: 'release' }, 'released')).count).to.equal(2);
      await established.whenClosed();
    });
  }

  for (const { label, workers } of nativeModes) {
    it(`${label}: a whole batch spent on retries whose errnos take turns (no streak) backs off too`, async function () {
      const turns: Fault[] = ['EPERM', 'ETIMEDOUT', 'EPERM', 'ETIMEDOUT'];
      const { child, port } = await startChild(
        cleanup,
        await requireShim(this),
        { backend: 'native', host: '127.0.0.1', workers, mode: 'serve', acceptorOptions: { batchLimit: turns.length, pauseMinMs: 5 } },
        turns,
      );
      const c = await client(cleanup, port);
      expect(await c.line(), child.transcript()).to.equal('hello 1');
      await child.waitFor('acceptPaused');
      const paused = child.all('acceptPaused').map((event) => ({ error: withoutMessage(event.error), delayMs: event.delayMs }));
      expect(paused).to.deep.equal([{ error: expected('ETIMEDOUT'), delayMs: 5 }]);
      const { stats } = await child.request({ cmd: 'stats' }, 'stats');
      expect({ retries: stats.acceptRetries, pauses: stats.acceptPauses, accepted: stats.accepted }).to.deep.equal({
        retries: { EPERM: 2, ETIMEDOUT: 2 },
        pauses: 1,
        accepted: 1,
      });
      expect(child.all('error')).to.deep.equal([]);
    });
  }
});

describe('js backend: libuv retries every accept() error itself, before the listener can see it', () => {
  // Since libuv 1.45, uv__server_io returns on any accept() error and tries again on the next
  // poll (EMFILE/ENFILE aside): Node never emits them, so this backend has no retry events,
  // no counts and no fatal errors. These tests pin that down, so a change shows.
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const cases: Array<[string, readonly Fault[]]> = [
    ['the retry set', RETRY_SET],
    ['EPERM, ETIMEDOUT, ENOSR, ESOCKTNOSUPPORT, EPROTONOSUPPORT', PER_CONNECTION_SET],
    ['EINVAL, which the native backend treats as fatal', ['EINVAL']],
  ];
  for (const [what, faults] of cases) {
    it(`serves the client after ${what}, reporting and counting nothing`, async function () {
      const shimPath = await requireShim(this);
      const { child, port } = await startChild(cleanup, shimPath, { backend: 'js', host: '127.0.0.1', mode: 'serve' }, faults);
      const c = await client(cleanup, port);
      expect(await c.line(), child.transcript()).to.equal('hello 1');
      const { stats } = await child.request({ cmd: 'stats' }, 'stats');
      expect({ retries: stats.acceptRetries, pauses: stats.acceptPauses, accepted: stats.accepted }).to.deep.equal({
        retries: {},
        pauses: 0,
        accepted: 1,
      });
      expect(child.events.filter((event) => ['acceptRetry', 'acceptPaused', 'error'].includes(event.event))).to.deep.equal([]);
      expect(child.stderr, 'every scheduled fault was injected').to.include(`call ${faults.length - 1} ->`);
    });
  }
});

describe('EINTR and EAGAIN from accept(): retried silently', () => {
  const modes = [...backends.map((backend) => ({ backend, workers: undefined, label: `${backend} backend` })), { backend: 'native', ...nativeModes[1] }] as const;
  for (const { backend, workers, label } of modes) {
    describe(label, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      it('serves the client and reports no retry, pause or error', async function () {
        const shimPath = await requireShim(this);
        const faults: Fault[] = ['EINTR', 'EAGAIN', 'EINTR'];
        const { child, port } = await startChild(cleanup, shimPath, { backend, host: '127.0.0.1', workers, mode: 'serve' }, faults);
        const c = await client(cleanup, port);
        expect(await c.line(), child.transcript()).to.equal('hello 1');
        const { stats } = await child.request({ cmd: 'stats' }, 'stats');
        expect({ retries: stats.acceptRetries, pauses: stats.acceptPauses, accepted: stats.accepted }).to.deep.equal({
          retries: {},
          pauses: 0,
          accepted: 1,
        });
        expect(child.events.filter((event) => ['acceptRetry', 'acceptPaused', 'error'].includes(event.event))).to.deep.equal([]);
      });
    });
  }
});

describe('running out of descriptors or kernel memory: accepting pauses, backs off and resumes by itself', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  for (const { label, workers } of nativeModes) {
    it(`${label}: EMFILE, ENFILE, ENOBUFS, ENOMEM pause with doubling delays, then the back-off resets`, async function () {
      const { child, port } = await startChild(
        cleanup,
        await requireShim(this),
        { backend: 'native', host: '127.0.0.1', workers, mode: 'serve', acceptorOptions: { pauseMinMs: 5, pauseMaxMs: 1000 } },
        ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'pass', 'EMFILE'],
      );
      const first = await client(cleanup, port);
      expect(await first.line(), child.transcript()).to.equal('hello 1');
      const paused = child.all('acceptPaused').map((event) => ({ error: withoutMessage(event.error), delayMs: event.delayMs }));
      expect(paused).to.deep.equal([
        { error: expected('EMFILE'), delayMs: 5 },
        { error: expected('ENFILE'), delayMs: 10 },
        { error: expected('ENOBUFS'), delayMs: 20 },
        { error: expected('ENOMEM'), delayMs: 40 },
      ]);

      // A batch that accepted something resets the back-off: the next pause starts at pauseMinMs.
      const second = await client(cleanup, port);
      expect(await second.line(), child.transcript()).to.equal('hello 2');
      expect(child.all('acceptPaused').slice(4).map((event) => [event.error.code, event.delayMs])).to.deep.equal([['EMFILE', 5]]);

      const { stats } = await child.request({ cmd: 'stats' }, 'stats');
      expect({ pauses: stats.acceptPauses, retries: stats.acceptRetries, accepted: stats.accepted }).to.deep.equal({
        pauses: 5,
        retries: {},
        accepted: 2,
      });
      expect(child.all('error')).to.deep.equal([]);
    });
  }

  it('js backend: stays up after EMFILE and serves the next client (libuv drops the one it could not accept)', async function () {
    const shimPath = await requireShim(this);
    const { child, port } = await startChild(cleanup, shimPath, { backend: 'js', host: '127.0.0.1', mode: 'serve' }, ['EMFILE']);
    const dropped = await client(cleanup, port);
    await dropped.whenClosed();
    expect(dropped.received, 'the dropped client got no greeting').to.equal('');
    // The trick drains the whole queue, so a client that arrives while it still runs is dropped
    // too; keep connecting until one is served.
    let greeting = '';
    for (let attempt = 0; attempt < 20 && greeting === ''; attempt++) {
      const next = await client(cleanup, port);
      greeting = await next.line().catch(() => '');
      if (greeting === '') await delay(50);
    }
    expect(greeting, child.transcript()).to.equal('hello 1');
    expect(child.all('error')).to.deep.equal([]);
  });
});

describe('any other accept() error is fatal: error event, listener closed, counters consistent', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  for (const { label, workers } of nativeModes) {
    it(`${label}: EINVAL (the socket is not listening) emits error, closes every connection and the port, and leaks nothing`, async function () {
      const shimPath = await requireShim(this);
      const config: ChildConfig = { backend: 'native', host: '127.0.0.1', workers, mode: 'hold' };
      const { child, port } = await startChild(cleanup, shimPath, config, ['pass', 'EINVAL']);
      const held = await client(cleanup, port);
      expect(await held.line(), child.transcript()).to.equal('hello 1');

      // The second client's accept fails with EINVAL. The listener then closes its socket, which
      // resets this client: on a busy machine that can come before its own connect() callback
      // runs, so only its end is awaited, never a successful connect.
      const failing = net.connect(port, '127.0.0.1');
      failing.on('error', () => undefined);
      const failingClosed = new Promise((resolve) => failing.once('close', resolve));
      cleanup.add(() => failing.destroy());
      const failure = await child.waitFor('error');
      expect(withoutMessage(failure.error)).to.deep.equal(expected('EINVAL'));
      expect(failure.stats.accepted, 'accepted === closed + active when the error is emitted').to.equal(
        failure.stats.closed + failure.stats.active,
      );
      expect(failure.stats.leaked).to.equal(0);

      const closed = await child.waitFor('close');
      const { accepted, active, leaked } = closed.stats;
      expect({ accepted, closed: closed.stats.closed, active, leaked }).to.deep.equal({
        accepted: 1,
        closed: 1,
        active: 0,
        leaked: 0,
      });
      await held.whenClosed();
      await within(failingClosed, 'the second client to be closed');
      expect(await connectOutcome(port), 'connecting after the fatal error').to.equal('ECONNREFUSED');
      expect(child.running, `the child process is still running\n${child.transcript()}`).to.equal(true);
      expect(child.all('acceptRetry')).to.deep.equal([]);
    });
  }
});
