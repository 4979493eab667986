// The accept thread's own system calls failing (test/fixtures/wake_fault_shim.c, preloaded in
// a child): its wake pipe is made with its flags in one call, and a failure to make it is an
// error with a code and leaves nothing open; a poll() that fails is reported as a pause and
// backed off, not retried at once for ever.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { loadNativeBinding } from '../src/native/load.js';
import { dispatchBindingOf } from '../src/workers/dispatch_binding.js';
import { compiledFixture, sourceFixture } from './support/paths.js';
import { Cleanup, within } from './support/registry_support.js';

const execFileAsync = promisify(execFile);
const ENOMEM = 12;
const EMFILE = 24;
const EINVAL = 22;
/** AcceptEventKind.Pause (src/native/binding.ts). */
const PAUSE = 1;

describe('the accept thread when its own system calls fail', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let shim = '';
  let dir = '';

  before(async function () {
    if (process.platform !== 'linux' || dispatchBindingOf(loadNativeBinding().binding) === null) this.skip();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-wake-faults-'));
    shim = path.join(dir, 'wake_fault_shim.so');
    try {
      await execFileAsync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', shim, sourceFixture('wake_fault_shim.c'), '-ldl'], { timeout: 60_000 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') this.skip();
      throw error;
    }
  });
  after(() => dir !== '' && fs.rmSync(dir, { recursive: true, force: true }));

  /** Runs the child's scenario with the shim and `fault` (variable -> errno); its JSON line. */
  async function scenario(name: string, variable: string, errno: number, extra: Record<string, string> = {}): Promise<unknown> {
    const faultFile = path.join(dir, `${name}.fault`);
    const inherited = process.env.LD_PRELOAD?.trim();
    const child = spawn(process.execPath, [compiledFixture('wake_fault_child'), name, faultFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...extra, LD_PRELOAD: inherited ? `${inherited} ${shim}` : shim, [variable]: `${errno}:${faultFile}` },
    });
    cleanup.add(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const code = await within(new Promise<number | null>((resolve) => child.once('exit', resolve)), `the ${name} child to finish`, 30_000);
    expect(code, output).to.equal(0);
    return JSON.parse(output.trim().split('\n').pop() ?? '') as unknown;
  }

  it('the wake pipe is close-on-exec and non-blocking from the call that makes it (fcntl after pipe() failing changes nothing)', async () => {
    const seen = await scenario('pipe-flags', 'NTL_PIPE_FCNTL_FAULT_WHILE', EINVAL);
    expect(seen).to.deep.equal({
      error: null,
      pipes: [
        { cloexec: true, nonblock: true },
        { cloexec: true, nonblock: true },
      ],
    });
  });

  it('a wake pipe that cannot be made: start() throws an error with a code, and leaves no descriptor open', async () => {
    const seen = await scenario('pipe2-fails', 'NTL_PIPE2_FAULT_WHILE', EMFILE);
    expect(seen).to.deep.equal({ error: { code: 'EMFILE', syscall: 'pipe2' }, pipes: [] });
  });

  it('poll() failing (ENOMEM) is reported as a pause and backed off; accepting goes on once it passes', async () => {
    const counter = path.join(dir, 'poll-failures');
    const seen = (await scenario('poll-fails', 'NTL_POLL_FAULT_WHILE', ENOMEM, { NTL_POLL_FAULT_COUNT: counter })) as {
      events: Array<{ kind: number; errno: number; delayMs: number }>;
      heard: string | null;
      served: number;
    };
    const failures = fs.existsSync(counter) ? fs.statSync(counter).size : 0;
    expect(seen.events, `events (poll() failed ${failures} times)`).to.deep.equal([
      { kind: PAUSE, errno: ENOMEM, delayMs: 5 },
      { kind: PAUSE, errno: ENOMEM, delayMs: 10 },
      { kind: PAUSE, errno: ENOMEM, delayMs: 20 },
    ]);
    // One failed poll() per pause, not a spin: the fault ended after the third pause.
    expect(failures, 'poll() calls that failed').to.be.at.most(10);
    expect(seen.heard).to.equal('served\n');
    expect(seen.served).to.equal(1);
  });
});
