// Readiness for a service manager: sd_notify-style datagrams to NOTIFY_SOCKET, received by a
// real AF_UNIX datagram socket (socat), from the library and from the CLI.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { nativeAvailable, systemdNotify } from '../src/index.js';
import { spawnCliProcess, stateDirFor } from './support/cli_process.js';
import { tlsConnect, useCleanup, waitUntil } from './support/tls_harness.js';
import type { Cleanup, ReportedError } from './support/tls_harness.js';

interface Receiver {
  /** NOTIFY_SOCKET's value for it. */
  address: string;
  /** Every datagram's bytes so far, back to back. */
  received(): string;
}

/** socat receiving datagrams on a path or an abstract name, killed at cleanup. */
async function datagramReceiver(cleanup: Cleanup, kind: 'path' | 'abstract'): Promise<Receiver> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-notify-'));
  cleanup.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'notify.sock');
  const abstractName = `ntl-notify-${process.pid}-${path.basename(dir)}`;
  const spec = kind === 'path' ? `UNIX-RECV:${file}` : `ABSTRACT-RECV:${abstractName}`;
  const child = spawn('socat', ['-u', spec, 'STDOUT'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // A missing socat fails the test once, saying so, instead of an unhandled 'error' event.
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new Error('socat is not installed (apt-get install -y socat); see scripts/test-preflight.mjs') : error),
    );
  });
  let received = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  cleanup.add(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  const address = kind === 'path' ? file : `@${abstractName}`;
  // Ready once a datagram can be sent to it: a path socket exists as a file, an abstract one is probed.
  await waitUntil(() => {
    if (kind === 'path') return fs.existsSync(file);
    return fs.readFileSync('/proc/net/unix', 'utf8').includes(`@${abstractName}`);
  }, 'socat to bind its datagram socket');
  return { address, received: () => received };
}

describe('systemdNotify sends sd_notify states to NOTIFY_SOCKET', function () {
  const cleanup = useCleanup();
  before(function () {
    if (!nativeAvailable()) this.skip();
  });

  for (const kind of ['path', 'abstract'] as const) {
    it(`sends each state as one datagram to ${kind === 'path' ? 'a socket path' : 'an abstract @name'}`, async function () {
      const receiver = await datagramReceiver(cleanup, kind);
      expect(systemdNotify('READY=1', { NOTIFY_SOCKET: receiver.address })).to.equal(true);
      expect(systemdNotify('STOPPING=1', { NOTIFY_SOCKET: receiver.address })).to.equal(true);
      await waitUntil(() => receiver.received() === 'READY=1STOPPING=1', `both states (got ${JSON.stringify(receiver.received())})`);
    });
  }

  it('does nothing and returns false when NOTIFY_SOCKET is not set', function () {
    expect(systemdNotify('READY=1', {})).to.equal(false);
    expect(systemdNotify('READY=1', { NOTIFY_SOCKET: '' })).to.equal(false);
  });

  it('throws a system error naming the call when nothing receives there, ERR_INVALID_OPTION for an address that is not one', function () {
    let error: ReportedError & { errno?: number; syscall?: string } = new Error('did not throw');
    try {
      systemdNotify('READY=1', { NOTIFY_SOCKET: path.join(os.tmpdir(), `ntl-no-such-${process.pid}.sock`) });
    } catch (caught) {
      error = caught as typeof error;
    }
    expect(error.code, error.message).to.equal('ENOENT');
    expect(error.errno).to.equal(os.constants.errno.ENOENT);
    expect(error.syscall).to.equal('sendto');
    for (const address of ['relative.sock', `/${'x'.repeat(200)}`]) {
      expect(() => systemdNotify('READY=1', { NOTIFY_SOCKET: address })).to.throw().with.property('code', 'ERR_INVALID_OPTION');
    }
  });
});

describe('CLI: readiness and stopping over NOTIFY_SOCKET', function () {
  this.timeout(30_000);
  const cleanup = useCleanup();

  for (const [how, extra] of [['', []], [' (with --workers 2: once every worker takes connections)', ['--workers', '2']]] as const) {
    it(`sends READY=1 once it listens and STOPPING=1 when it begins to shut down${how}`, async function () {
      if (!nativeAvailable()) this.skip();
      const receiver = await datagramReceiver(cleanup, 'abstract');
      const cli = spawnCliProcess(cleanup, ['--port', '0', '--state-dir', stateDirFor(cleanup), ...extra], { env: { NOTIFY_SOCKET: receiver.address } });
      await waitUntil(() => receiver.received() === 'READY=1' || cli.exit !== null, 'READY=1', 15_000);
      // Ready means listening: a client is served at once.
      const port = await cli.started();
      const client = tlsConnect(cleanup, port);
      expect(await client.line()).to.match(/^native-tls-listener: /);
      expect((await cli.stop()).code).to.equal(0);
      expect(receiver.received()).to.equal('READY=1STOPPING=1');
      expect(cli.stderr).to.not.include('could not tell');
    });
  }

  it('without the addon, logs one line saying it cannot notify, and serves anyway', async function () {
    const receiver = await datagramReceiver(cleanup, 'path');
    const cli = spawnCliProcess(cleanup, ['--port', '0', '--backend', 'js', '--state-dir', stateDirFor(cleanup)], {
      env: { NOTIFY_SOCKET: receiver.address, NATIVE_TLS_LISTENER_ADDON: path.join(os.tmpdir(), 'no-such-addon.node') },
    });
    const port = await cli.started();
    await cli.logged(/^native-tls-listener: could not tell the service manager READY=1: NOTIFY_SOCKET is set, but only the native addon can send to it/);
    const client = tlsConnect(cleanup, port);
    expect(await client.line()).to.match(/^native-tls-listener: /);
    expect((await cli.stop()).code).to.equal(0);
    expect(receiver.received()).to.equal('');
  });
});
