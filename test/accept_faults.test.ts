// accept() errors a loopback client cannot cause, made real by an LD_PRELOAD shim
// (test/fixtures/accept_fault_shim.c) in a child process that runs the listener. Each
// scheduled errno fails one accept call that would otherwise have found the pending client,
// which stays queued for the next call.
//
// The native backend calls accept4() from the addon; the js backend's libuv (inside the node
// binary) calls libc's accept4() too, so the shim reaches both. libuv has its own policy in
// front of ours: it ignores ECONNABORTED silently and answers EMFILE/ENFILE with its
// reserve-descriptor trick (accept the pending connection and drop it), reporting nothing.
import { expect } from 'chai';
import { ChildListener } from './support/child_listener.js';
import type { ChildConfig, ErrorReport } from './support/child_protocol.js';
import { LINUX_ERRNO, buildAcceptFaultShim, faultEnvironment } from './support/fault_shim.js';
import type { BuiltShim, ErrnoName, Fault } from './support/fault_shim.js';
import { Cleanup, connect, connectOutcome, delay } from './support/sockets.js';
import type { Client } from './support/sockets.js';

const backends = ['native', 'js'] as const;

/** The original's retry set: network errors of the pending connection (accept(2)). */
const RETRY_SET: readonly ErrnoName[] = [
  'ECONNABORTED',
  'ENETDOWN',
  'EPROTO',
  'ENOPROTOOPT',
  'EHOSTDOWN',
  'ENONET',
  'EHOSTUNREACH',
  'EOPNOTSUPP',
  'ENETUNREACH',
];

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

async function startChild(cleanup: Cleanup, shimPath: string, config: ChildConfig, faults: readonly Fault[]): Promise<{
  child: ChildListener;
  port: number;
}> {
  const child = ChildListener.start(config, { env: faultEnvironment(shimPath, faults) });
  cleanup.add(() => child.stop());
  const listening = await child.waitFor('listening');
  return { child, port: listening.port };
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

  it(`native backend: one acceptRetry per errno (${RETRY_SET.length}), each counted in stats().acceptRetries`, async function () {
    const { child, port } = await startChild(
      cleanup,
      await requireShim(this),
      { backend: 'native', host: '127.0.0.1', mode: 'serve' },
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
});

describe('js backend: libuv retries every accept() error itself, before the listener can see it', () => {
  // Since libuv 1.45, uv__server_io returns on any accept() error and tries again on the next
  // poll (EMFILE/ENFILE aside): Node never emits them, so this backend has no retry events,
  // no counts and no fatal errors. These tests pin that down, so a change shows.
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const cases: Array<[string, readonly Fault[]]> = [
    ['the retry set', RETRY_SET],
    ['EPERM, which the native backend treats as fatal', ['EPERM']],
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
  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      it('serves the client and reports no retry, pause or error', async function () {
        const shimPath = await requireShim(this);
        const faults: Fault[] = ['EINTR', 'EAGAIN', 'EINTR'];
        const { child, port } = await startChild(cleanup, shimPath, { backend, host: '127.0.0.1', mode: 'serve' }, faults);
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

  it('native backend: EMFILE, ENFILE, ENOBUFS, ENOMEM pause with doubling delays, then the back-off resets', async function () {
    const { child, port } = await startChild(
      cleanup,
      await requireShim(this),
      { backend: 'native', host: '127.0.0.1', mode: 'serve', acceptorOptions: { pauseMinMs: 5, pauseMaxMs: 1000 } },
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

  it('native backend: EPERM emits error, closes every connection and the port, and leaks nothing', async function () {
    const shimPath = await requireShim(this);
    const config: ChildConfig = { backend: 'native', host: '127.0.0.1', mode: 'hold' };
    const { child, port } = await startChild(cleanup, shimPath, config, ['pass', 'EPERM']);
    const held = await client(cleanup, port);
    expect(await held.line(), child.transcript()).to.equal('hello 1');

    // The second client's accept fails with EPERM.
    const failing = await client(cleanup, port);
    const failure = await child.waitFor('error');
    expect(withoutMessage(failure.error)).to.deep.equal(expected('EPERM'));
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
    await failing.whenClosed();
    expect(await connectOutcome(port), 'connecting after the fatal error').to.equal('ECONNREFUSED');
    expect(child.running, `the child process is still running\n${child.transcript()}`).to.equal(true);
    expect(child.all('acceptRetry')).to.deep.equal([]);
  });
});
