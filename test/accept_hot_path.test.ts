// What one connection costs the native acceptor when clients come one at a time (the
// latency-sensitive case): the system calls the child process makes, as strace sees them, and
// the array each batch is handed over in.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ChildListener } from './support/child_listener.js';
import { Cleanup, connect, waitUntil } from './support/sockets.js';
import { loadNativeBinding } from '../src/native/load.js';
import type { NativeBinding } from '../src/native/binding.js';

const CLIENTS = 8;

function hasStrace(): boolean {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface TracedCall {
  name: string;
  fd: number;
  result: string;
}

/** accept4, close and the descriptor probes of a strace -f log: each call's name, first argument and result. */
function tracedCalls(log: string): TracedCall[] {
  const calls: TracedCall[] = [];
  for (const line of log.split('\n')) {
    const match = /^\d+\s+(accept4|fstat|newfstatat|statx|getsockname|getsockopt|close)\((\d+)[,)].*\s+=\s+(.*)$/.exec(line);
    if (match) calls.push({ name: match[1] as string, fd: Number(match[2]), result: match[3] as string });
  }
  return calls;
}

describe('a lone client costs the native acceptor no wasted system call', function () {
  this.timeout(60_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let calls: TracedCall[];
  let listenFd: number;

  before(async function () {
    if (process.platform !== 'linux' || !hasStrace() || loadNativeBinding().binding === null) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-strace-'));
    const log = path.join(dir, 'trace');
    try {
      const traced = ['accept4', 'fstat', 'newfstatat', 'statx', 'getsockname', 'getsockopt', 'close'].join(',');
      const child = ChildListener.start({ backend: 'native', host: '127.0.0.1', mode: 'serve' }, { wrapper: ['strace', '-f', '-qq', '-o', log, '-e', `trace=${traced}`, '--'] });
      try {
        const { port } = await child.waitFor('listening', () => true, { timeoutMs: 20_000 });
        // One at a time: each client is served and gone before the next connects.
        for (let i = 1; i <= CLIENTS; i++) {
          const client = await connect(port);
          expect(await client.line()).to.equal(`hello ${i}`);
          await client.whenClosed();
        }
        const stats = await child.request({ cmd: 'stats' }, 'stats');
        expect(stats.stats.accepted).to.equal(CLIENTS);
      } finally {
        await child.stop();
      }
      calls = tracedCalls(fs.readFileSync(log, 'utf8'));
      const accepts = calls.filter((call) => call.name === 'accept4');
      listenFd = accepts[0]?.fd ?? -1;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`accepts each of ${CLIENTS} clients arriving one at a time with one accept4() call, none returning EAGAIN`, () => {
    const accepts = calls.filter((call) => call.name === 'accept4' && call.fd === listenFd);
    expect(accepts.filter((call) => call.result.includes('EAGAIN')), 'accept4() calls that found the queue empty').to.deep.equal([]);
    expect(accepts).to.have.length(CLIENTS);
  });

  it('wraps every accepted descriptor after the first without asking what it is (fstat, getsockopt, getsockname)', () => {
    const isAccept = (call: TracedCall): boolean => call.name === 'accept4' && call.fd === listenFd && /^\d+$/.test(call.result);
    const accepted = calls.filter(isAccept).map((call) => Number(call.result));
    expect(accepted).to.have.length(CLIENTS);
    // The first is wrapped the ordinary way (new net.Socket({ fd })), which shows the handle
    // to use for the rest; from the second on, nothing asks about a descriptor between its
    // accept and its close.
    const probed: TracedCall[] = [];
    let open: number | null = null;
    let seen = 0;
    for (const call of calls) {
      if (isAccept(call)) {
        seen++;
        open = seen >= 2 ? Number(call.result) : null;
      } else if (call.fd === open) {
        if (call.name === 'close') open = null;
        else probed.push(call);
      }
    }
    expect(probed, 'calls on accepted descriptors').to.deep.equal([]);
  });
});

describe('the native acceptor hands every batch over in one reused array', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let binding: NativeBinding;

  before(function () {
    const loaded = loadNativeBinding().binding;
    if (loaded === null) this.skip();
    binding = loaded;
  });

  it('passes the same Int32Array, and the number of descriptors in it, to every batch callback', async () => {
    const opened = binding.openListenSocket(4, '127.0.0.1', 0, 16);
    if ('errno' in opened) throw new Error(`openListenSocket: errno ${opened.errno}`);
    const seen: Array<{ array: Int32Array; count: number; length: number }> = [];
    const acceptor = new binding.Acceptor(
      opened.fd,
      (fds, count) => {
        seen.push({ array: fds, count, length: fds.length });
        // Left untouched, the descriptors stay the acceptor's, which closes them.
      },
      () => undefined,
      { batchLimit: 4 },
    );
    cleanup.add(() => acceptor.close());
    acceptor.start();
    const port = acceptor.address()?.port;
    if (port === undefined) throw new Error('the acceptor has no address');
    for (let i = 1; i <= 3; i++) {
      const client = await connect(port);
      cleanup.add(() => client.destroy());
      await waitUntil(() => seen.length === i, `batch ${i}`);
      await client.whenClosed();
    }
    expect(seen.map(({ count, length }) => ({ count, length }))).to.deep.equal([
      { count: 1, length: 4 },
      { count: 1, length: 4 },
      { count: 1, length: 4 },
    ]);
    expect(seen[1]?.array).to.equal(seen[0]?.array);
    expect(seen[2]?.array).to.equal(seen[0]?.array);
  });
});

describe('a burst of connections queued before the native acceptor polls', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let binding: NativeBinding;

  before(function () {
    const loaded = loadNativeBinding().binding;
    if (loaded === null) this.skip();
    binding = loaded;
  });

  it('is accepted in batches of batchLimit, as many as the kernel says are queued, with no accept() that finds the queue empty', async () => {
    const opened = binding.openListenSocket(4, '127.0.0.1', 0, 64);
    if ('errno' in opened) throw new Error(`openListenSocket: errno ${opened.errno}`);
    const counts: number[] = [];
    const acceptor = new binding.Acceptor(opened.fd, (_fds, count) => void counts.push(count), () => undefined, { batchLimit: 4 });
    cleanup.add(() => acceptor.close());
    const port = acceptor.address()?.port;
    if (port === undefined) throw new Error('the acceptor has no address');
    // The kernel completes the handshakes by itself: all ten wait in the queue before polling starts.
    const clients = await Promise.all(Array.from({ length: 10 }, () => connect(port)));
    for (const client of clients) cleanup.add(() => client.destroy());
    acceptor.start();
    await waitUntil(() => counts.reduce((a, b) => a + b, 0) === 10, 'ten connections accepted');
    expect(counts).to.deep.equal([4, 4, 2]);
    if (process.platform === 'linux') expect(acceptor.stats().emptyAccepts).to.equal(0);
  });
});
