// Passing listening sockets to a successor (native/descriptor_passing.cc): a sendmsg that
// sends part of its payload has delivered the descriptors all the same (SCM_RIGHTS rides with
// the first byte), so it is a success and the rest of the line follows; and a receive may not
// hold a threadpool thread for longer than 60 s.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { loadNativeBinding } from '../src/native/load.js';
import type { NativeBinding } from '../src/native/binding.js';
import { takeOver, UpgradeControl } from '../src/upgrade/index.js';
import { compiledFixture, sourceFixture } from './support/paths.js';
import { Cleanup, within } from './support/registry_support.js';

const execFileAsync = promisify(execFile);

describe('descriptor passing: partial sends and bounded receives', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let binding: NativeBinding;
  let dir = '';

  before(function () {
    const loaded = loadNativeBinding().binding;
    if (loaded === null || process.platform !== 'linux') this.skip();
    binding = loaded;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-passing-'));
  });
  after(() => dir !== '' && fs.rmSync(dir, { recursive: true, force: true }));

  it('a sendmsg that sends 5 bytes of the line: success with sent 5; the receiver has the descriptor and, after the rest, the whole line', async function () {
    const shim = path.join(dir, 'wake_fault_shim.so');
    try {
      await execFileAsync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', shim, sourceFixture('wake_fault_shim.c'), '-ldl'], { timeout: 60_000 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') this.skip();
      throw error;
    }
    const faultFile = path.join(dir, 'sendmsg.fault');
    const inherited = process.env.LD_PRELOAD?.trim();
    const child = spawn(process.execPath, [compiledFixture('wake_fault_child'), 'sendmsg-partial', faultFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LD_PRELOAD: inherited ? `${inherited} ${shim}` : shim, NTL_SENDMSG_PARTIAL_WHILE: `5:${faultFile}` },
    });
    cleanup.add(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const code = await within(new Promise<number | null>((resolve) => child.once('exit', resolve)), 'the hand-off child to finish', 30_000);
    expect(code, output).to.equal(0);
    expect(JSON.parse(output.trim().split('\n').pop() ?? '')).to.deep.equal({
      result: { sent: 5 },
      payloadBytes: 5,
      line: '{"type":"hello","pid":1,"fds":1}\n',
      fds: 1,
    });
  });

  it('receiveDescriptors refuses a timeout over 60 s with ERR_INVALID_OPTION (it would hold a threadpool thread that long)', () => {
    const call = (timeoutMs: number): unknown => binding.receiveDescriptors(path.join(dir, 'nobody.sock'), timeoutMs);
    for (const timeoutMs of [60_001, 2 ** 31 - 1, 0]) {
      expect(() => call(timeoutMs), `timeoutMs ${timeoutMs}`)
        .to.throw()
        .with.property('code', 'ERR_INVALID_OPTION');
    }
  });

  it('takeOver() and UpgradeControl.listen() refuse a timeoutMs over 60 s with ERR_INVALID_OPTION', async () => {
    const socketPath = path.join(dir, 'control.sock');
    for (const timeoutMs of [60_001, 2 ** 31 - 1, 1.5]) {
      const taking = await takeOver({ path: socketPath, timeoutMs }).then(
        () => null,
        (error: unknown) => error,
      );
      expect(taking, `takeOver timeoutMs ${timeoutMs}`).to.have.property('code', 'ERR_INVALID_OPTION');
      const listening = await UpgradeControl.listen([], { path: socketPath, timeoutMs }).then(
        async (control) => {
          await control.close();
          return null;
        },
        (error: unknown) => error,
      );
      expect(listening, `UpgradeControl.listen timeoutMs ${timeoutMs}`).to.have.property('code', 'ERR_INVALID_OPTION');
    }
  });
});
