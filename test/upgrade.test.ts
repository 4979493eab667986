// An upgrade without dropping a connection: real processes (the CLI, old and new), real
// clients connecting all along, the listening socket passed over a Unix socket (SCM_RIGHTS).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { nativeAvailable, takeOver, UpgradeControl } from '../src/index.js';
import type { CodedError } from '../src/index.js';
import type { NativeBinding } from '../src/native/binding.js';
import { loadNativeBinding } from '../src/native/load.js';
import { spawnCliProcess } from './support/cli_process.js';
import type { CliProcess } from './support/cli_process.js';
import { compiledFixture } from './support/paths.js';
import { descriptorCount, descriptorFlags, descriptors, listeningSocketInode, O_CLOEXEC, socketInode } from './support/proc.js';
import { Cleanup, delay, waitUntil, within } from './support/sockets.js';
import { BACKENDS, greet, startListener, tlsConnect } from './support/tls_harness.js';
import { createTestPki } from './support/pki.js';

const pki = await createTestPki();
const credential = { key: pki.server.key, cert: pki.server.cert };

const describeNative = nativeAvailable() && process.platform === 'linux' ? describe : describe.skip;

function stateDir(cleanup: Cleanup): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-upgrade-'));
  cleanup.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function handleFd(handle: net.Socket | net.Server): number {
  return (handle as unknown as { _handle: { fd: number } })._handle.fd;
}

async function listeningTcp(cleanup: Cleanup): Promise<net.Server> {
  const tcp = net.createServer();
  cleanup.add(() => tcp.close());
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  return tcp;
}

/**
 * A sender at `controlPath` that offers `fd` with a hello line to whoever connects (what an old
 * process does), then closes its end: the message stays queued at the receiver.
 */
async function offerDescriptor(cleanup: Cleanup, binding: NativeBinding, controlPath: string, fd: number): Promise<void> {
  const sender = net.createServer({ pauseOnConnect: true }, (socket) => {
    binding.sendDescriptors(handleFd(socket), [fd], Buffer.from('{"type":"hello","pid":1,"fds":1}\n'));
    socket.destroy();
  });
  cleanup.add(() => sender.close());
  await new Promise<void>((resolve) => sender.listen(controlPath, resolve));
}

function spawnCli(cleanup: Cleanup, args: readonly string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  return spawnCliProcess(cleanup, args, { env });
}

/** One TLS client: connect, read the server's first line, close. Resolves with what went wrong, or null. */
function oneClient(port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    let received = '';
    const timer = setTimeout(() => finish('no first line within 10 s'), 10_000);
    const finish = (outcome: string | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.includes('\n')) finish(null);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
    socket.once('close', () => finish(`closed before the first line (${JSON.stringify(received)})`));
  });
}

/** Clients connecting one after another on `lanes` lanes until stop(); every failure kept. */
function continuousClients(port: number, lanes: number): { stop(): Promise<void>; succeeded: number; failures: string[] } {
  let running = true;
  const load = {
    succeeded: 0,
    failures: [] as string[],
    /** Idempotent: the test stops the clients, and its cleanup again when the test failed first. */
    stop: async (): Promise<void> => {
      running = false;
      await within(Promise.all(loops), 'the client loops to stop', 20_000);
    },
  };
  const lane = async (): Promise<void> => {
    while (running) {
      const failure = await oneClient(port);
      if (failure === null) load.succeeded++;
      else load.failures.push(failure);
    }
  };
  const loops = Array.from({ length: lanes }, lane);
  return load;
}

/** Socket descriptors of a process that point at `inode`. */
function holdsSocket(pid: number, inode: number): boolean {
  return [...descriptors(pid).keys()].some((fd) => socketInode(fd, pid) === inode);
}

describeNative('Upgrade: a new process takes the listening socket over while clients connect', function () {
  this.timeout(60_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  for (const backend of BACKENDS) {
    it(`${backend} backend: no client refused or reset, new connections reach the new process, the old one's connections finish`, async function () {
      const dir = stateDir(cleanup);
      const old = spawnCli(cleanup, ['--port', '0', '--state-dir', dir, '--backend', backend]);
      const port = await old.started();
      const listening = listeningSocketInode(port);
      expect(listening, 'the listening socket').to.be.a('number');

      // A connection of the old process that is still open when the upgrade comes.
      const longLived = tlsConnect(cleanup, port, { rejectUnauthorized: false });
      await longLived.line();
      const load = continuousClients(port, 3);
      cleanup.add(() => load.stop());
      await waitUntil(() => load.succeeded >= 20, 'clients served before the upgrade', 15_000);

      const successor = spawnCli(cleanup, ['--upgrade', '--port', '0', '--state-dir', dir, '--backend', backend]);
      expect(await successor.started(), 'the new process listens on the same port').to.equal(port);
      await successor.waitForLog(`took the listening socket over from process ${old.pid}`);
      const servedAtHandOff = load.succeeded;

      // The old process drains: its long-lived connection is ended, not reset, and it exits 0.
      expect(await old.ended('the old process to drain and exit')).to.deep.equal({ code: 0, signal: null });
      await longLived.whenClosed(10_000);
      expect(longLived.error, 'the old connection ended cleanly').to.equal(null);
      expect(old.stderr).to.include('upgrade: a new process accepts now; draining');
      const oldStats = old.finalStats();
      expect(oldStats.leaked).to.equal(0);

      // The same socket, held by the new process only.
      expect(listeningSocketInode(port)).to.equal(listening);
      expect(holdsSocket(successor.pid, listening as number), 'the new process holds the socket').to.equal(true);
      await waitUntil(() => load.succeeded >= servedAtHandOff + 20, 'clients served after the old process left', 15_000);
      await load.stop();

      expect(load.failures, 'clients refused, reset or cut short').to.deep.equal([]);
      expect(await successor.stop()).to.deep.equal({ code: 0, signal: null });
      const newStats = successor.finalStats();
      expect(newStats.accepted, 'connections accepted by the new process').to.be.greaterThan(0);
      expect(newStats.leaked).to.equal(0);
      // Every client was accepted by exactly one of the two.
      expect(oldStats.accepted + newStats.accepted).to.equal(load.succeeded + 1);
    });
  }

  it('the new process can itself be upgraded: the control socket passes on with the listening socket', async function () {
    const dir = stateDir(cleanup);
    const first = spawnCli(cleanup, ['--port', '0', '--state-dir', dir]);
    const port = await first.started();
    const second = spawnCli(cleanup, ['--upgrade', '--port', '0', '--state-dir', dir]);
    await second.started();
    await first.ended();
    // "released" came before the second bound its control socket: wait for it to appear.
    await waitUntil(() => fs.existsSync(path.join(dir, 'control.sock')), 'the new control socket', 10_000);
    const third = spawnCli(cleanup, ['--upgrade', '--port', '0', '--state-dir', dir]);
    expect(await third.started()).to.equal(port);
    expect(await second.ended()).to.deep.equal({ code: 0, signal: null });
    expect(await oneClient(port)).to.equal(null);
  });
});

describeNative('Upgrade: a failed hand-off leaves the old process serving', function () {
  this.timeout(60_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  async function oldProcess(): Promise<{ old: CliProcess; port: number; dir: string; fdCount: number }> {
    const dir = stateDir(cleanup);
    const old = spawnCli(cleanup, ['--port', '0', '--state-dir', dir]);
    const port = await old.started();
    expect(await oneClient(port)).to.equal(null);
    await delay(200);
    return { old, port, dir, fdCount: descriptorCount(old.pid) };
  }

  async function stillServing(old: CliProcess, port: number, fdCount: number): Promise<void> {
    expect(old.exit, 'the old process still runs').to.equal(null);
    expect(await oneClient(port), 'a client after the failed hand-off').to.equal(null);
    // Nothing of the attempt is left in the old process (the client's socket has closed).
    await waitUntil(() => descriptorCount(old.pid) === fdCount, `the old process back to ${fdCount} descriptors`, 10_000);
    expect(await old.stop()).to.deep.equal({ code: 0, signal: null });
    expect(old.finalStats().leaked).to.equal(0);
  }

  it('the new process fails to start after receiving the socket (a missing certificate): it exits 1 and releases it', async function () {
    const { old, port, dir, fdCount } = await oldProcess();
    const successor = spawnCli(cleanup, ['--upgrade', '--port', '0', '--state-dir', dir, '--cert', path.join(dir, 'missing.pem'), '--key', path.join(dir, 'missing.key')]);
    expect((await successor.ended()).code).to.equal(1);
    expect(successor.stderr).to.include('missing.pem');
    expect(old.stderr).to.include('upgrade abandoned, still serving');
    await stillServing(old, port, fdCount);
  });

  it('the new process dies (SIGKILL) after receiving the socket, before it is ready', async function () {
    const { old, port, dir, fdCount } = await oldProcess();
    const taker = spawn(process.execPath, [compiledFixture('upgrade_taker'), path.join(dir, 'control.sock')], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.add(() => taker.kill('SIGKILL'));
    let output = '';
    taker.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    await waitUntil(() => output.includes('received 1'), 'the taker to receive the socket', 15_000);
    expect(holdsSocket(taker.pid as number, listeningSocketInode(port) as number)).to.equal(true);
    taker.kill('SIGKILL');
    await within(new Promise((resolve) => taker.once('close', resolve)), 'the taker to die');
    await waitUntil(() => old.stderr.includes('upgrade abandoned, still serving'), 'the old process to notice', 10_000);
    await stillServing(old, port, fdCount);
  });

  it('nobody is running: --upgrade exits 1 saying so, and binds nothing', async function () {
    const dir = stateDir(cleanup);
    const successor = spawnCli(cleanup, ['--upgrade', '--port', '0', '--state-dir', dir]);
    expect((await successor.ended()).code).to.equal(1);
    expect(successor.stderr).to.match(/upgrade failed: no listening sockets from .*control\.sock: connect ENOENT/);
    expect(successor.stderr).to.include('no server is running there (start one without --upgrade)');
    expect(successor.stderr).to.not.include('keeps serving');
  });
});

describeNative('Upgrade: the library API and the descriptor checks', function () {
  this.timeout(30_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('a successor that never says it is ready times out: the old listener keeps accepting, no descriptor leaked on either side', async function () {
    const { listener, port } = await startListener(cleanup, { credential }, greet('old\n'));
    const controlPath = path.join(stateDir(cleanup), 'control.sock');
    const control = await UpgradeControl.listen([listener], { path: controlPath, timeoutMs: 300 });
    cleanup.add(() => control.close());
    const failed = new Promise<Error>((resolve) => control.once('handOffFailed', resolve));
    const before = descriptorCount();

    const handOver = await takeOver({ path: controlPath, timeoutMs: 5000 });
    expect(handOver.fds).to.have.length(1);
    expect(socketInode(handOver.fds[0] as number)).to.equal(listeningSocketInode(port));
    const error = await within(failed, 'the hand-off to time out');
    expect((error as CodedError).code).to.equal('ERR_UPGRADE_FAILED');
    expect(error.message).to.include('within 300 ms');
    // Too late: the old process gave up, so the successor does not take over.
    const confirmed = await handOver.confirm().then(
      () => null,
      (failure: CodedError) => failure,
    );
    expect(confirmed?.code).to.equal('ERR_UPGRADE_FAILED');
    for (const fd of handOver.fds) handOver.closeUnadopted(fd);
    await waitUntil(() => descriptorCount() === before, `this process back to ${before} descriptors`);

    expect(listener.listeningDescriptor()).to.be.a('number');
    const client = tlsConnect(cleanup, port, { rejectUnauthorized: false });
    expect(await client.line()).to.equal('old');
  });

  it('a descriptor that is not a listening TCP socket is refused and closed by the receiver', async function () {
    const binding = loadNativeBinding().binding;
    if (binding === null) this.skip();
    const controlPath = path.join(stateDir(cleanup), 'control.sock');
    // A sender that offers a connected TCP socket (not listening) instead of a listening one.
    const tcp = await listeningTcp(cleanup);
    const connected = net.connect((tcp.address() as net.AddressInfo).port, '127.0.0.1');
    cleanup.add(() => connected.destroy());
    await new Promise((resolve) => connected.once('connect', resolve));
    await offerDescriptor(cleanup, binding, controlPath, handleFd(connected));
    const before = descriptorCount();

    const refused = await takeOver({ path: controlPath, timeoutMs: 5000 }).then(
      () => null,
      (error: CodedError & { errno?: number; syscall?: string }) => error,
    );
    expect(refused?.code).to.equal('ERR_UPGRADE_FAILED');
    expect(refused?.syscall).to.equal('getsockopt');
    expect(refused?.errno).to.equal(os.constants.errno.EINVAL);
    // The received descriptor and the connection closed (the sender's end closes on its own).
    await waitUntil(() => descriptorCount() === before, `this process back to ${before} descriptors`);
  });

  it('the descriptors received are close-on-exec (MSG_CMSG_CLOEXEC, or FD_CLOEXEC set after recvmsg in a portable build)', async function () {
    const binding = loadNativeBinding().binding;
    if (binding === null) this.skip();
    const controlPath = path.join(stateDir(cleanup), 'control.sock');
    const tcp = await listeningTcp(cleanup);
    await offerDescriptor(cleanup, binding, controlPath, handleFd(tcp));

    const received = await binding.receiveDescriptors(controlPath, 5000);
    cleanup.add(() => {
      for (const fd of [received.socketFd, ...received.fds]) fs.closeSync(fd);
    });
    expect(received.fds).to.have.length(1);
    // A descriptor arrives without close-on-exec unless the receiver asks for it.
    for (const fd of [received.socketFd, ...received.fds]) {
      expect(descriptorFlags(fd) & O_CLOEXEC, `flags of fd ${fd}: ${descriptorFlags(fd).toString(8)}`).to.equal(O_CLOEXEC);
    }
  });

  it('without the native addon (js backend) there is no hand-off: the CLI says so and serves as before', async function () {
    const dir = stateDir(cleanup);
    const cli = spawnCli(cleanup, ['--port', '0', '--state-dir', dir, '--backend', 'js'], { NATIVE_TLS_LISTENER_ADDON: path.join(dir, 'no-addon.node') });
    const port = await cli.started();
    await cli.waitForLog('no upgrades without downtime for this process');
    expect(cli.stderr).to.include('needs the native addon (ERR_NATIVE_UNAVAILABLE)');
    expect(fs.existsSync(path.join(dir, 'control.sock'))).to.equal(false);
    expect(await oneClient(port)).to.equal(null);
    expect(await cli.stop()).to.deep.equal({ code: 0, signal: null });
  });
});

describeNative('Upgrade: a stalled peer on the control socket does not hold a real upgrade off', function () {
  this.timeout(60_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('a peer that connects and never answers: --upgrade still takes over at once, and the peer is dropped', async function () {
    const dir = stateDir(cleanup);
    const old = spawnCli(cleanup, ['--port', '0', '--state-dir', dir]);
    const port = await old.started();
    // Connects, is sent the descriptors, and says nothing: until now it held the control
    // socket for the whole hand-off timeout (30 s), and a real successor was turned away.
    const stalled = net.connect(path.join(dir, 'control.sock'));
    cleanup.add(() => stalled.destroy());
    stalled.on('error', () => undefined);
    let stalledData = '';
    stalled.setEncoding('utf8').on('data', (chunk: string) => (stalledData += chunk));
    await waitUntil(() => stalledData.includes('hello'), 'the stalled peer to be served', 10_000);
    const successor = spawnCli(cleanup, ['--upgrade', '--port', '0', '--state-dir', dir]);
    expect(await successor.started()).to.equal(port);
    expect(await old.ended()).to.deep.equal({ code: 0, signal: null });
    expect(await oneClient(port)).to.equal(null);
    await within(new Promise((resolve) => (stalled.destroyed ? resolve(null) : stalled.once('close', resolve))), 'the stalled peer to be dropped');
  });
});
