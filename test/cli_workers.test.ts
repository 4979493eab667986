// The CLI with --workers: the line protocol and HTTPS served from worker threads fed by the
// native acceptor, showing the listener's statistics as a whole (with each worker's counts);
// reloads, the final statistics and the flag's checks. Real clients (openssl s_client, curl,
// Node's tls) against the real command.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { nativeAvailable } from '../src/index.js';
import type { WorkersListenerStats } from '../src/index.js';
import { spawnCliProcess, stateDirFor } from './support/cli_process.js';
import type { CliProcess } from './support/cli_process.js';
import { createTestPki } from './support/pki.js';
import { rawConnect, sClient, tlsConnect, useCleanup, waitUntil } from './support/tls_harness.js';
import type { Cleanup, TlsClient } from './support/tls_harness.js';

const execFileAsync = promisify(execFile);
const pki = await createTestPki();

/** curl with the CA and SNI `localhost`: what a browser on this machine does. */
async function curlLocalhost(stateDir: string, port: number, pathname: string): Promise<string> {
  const { stdout } = await execFileAsync('curl', [
    '-sS', '--max-time', '10', '--cacert', path.join(stateDir, 'ca.pem'), '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}${pathname}`,
  ]);
  return stdout;
}

/** A client without SNI that got the line protocol's greeting; returns it and the worker thread named in it. */
async function greeted(cleanup: Cleanup, port: number): Promise<{ client: TlsClient; thread: string }> {
  const client = tlsConnect(cleanup, port);
  const greeting = await client.line(0);
  const thread = /worker thread (\d+)/.exec(greeting)?.[1];
  if (thread === undefined) throw new Error(`no worker thread in the greeting: ${greeting}`);
  return { client, thread };
}

function sumOfWorkers(stats: WorkersListenerStats, key: 'accepted' | 'closed' | 'active'): number {
  return stats.workers.reduce((sum, worker) => sum + worker[key], 0);
}

async function startWithWorkers(cleanup: Cleanup, args: readonly string[]): Promise<{ cli: CliProcess; port: number; stateDir: string }> {
  const stateDir = stateDirFor(cleanup);
  const cli = spawnCliProcess(cleanup, ['--port', '0', '--state-dir', stateDir, ...args]);
  return { cli, port: await cli.started(), stateDir };
}

describe('CLI --workers: the handlers run in worker threads and show the listener as a whole', function () {
  this.timeout(60_000);
  const cleanup = useCleanup();

  before(function () {
    if (!nativeAvailable()) this.skip();
  });

  it('--workers 2: openssl s_client gets the line protocol from a worker, and its stats show the listener with 2 workers', async function () {
    const { cli, port, stateDir } = await startWithWorkers(cleanup, ['--workers', '2']);
    expect(cli.stdout).to.match(/^listening on 127\.0\.0\.1:\d+ \(native backend, 2 worker threads\)$/m);
    const result = await sClient(cleanup, port, ['-quiet', '-verify_return_error', '-CAfile', path.join(stateDir, 'ca.pem')], (out) => out.includes('bye'), {
      typeInto: (stdin) => stdin.write('stats\nquit\n'),
    });
    const [greeting, statsLine, bye] = result.stdout.split('\n');
    expect(greeting).to.match(/^native-tls-listener: connection \d+, TLSv1\.3, no SNI, worker thread \d+; commands: stats, quit, help/);
    expect(bye).to.equal('bye');
    const stats = JSON.parse(statsLine ?? '') as WorkersListenerStats;
    expect(stats.workers).to.have.length(2);
    // The asking connection itself is in the listener's book, on one of the workers.
    expect(stats.accepted).to.equal(1);
    expect(stats.active).to.equal(1);
    expect(stats.workers.map((worker) => worker.active).sort()).to.deep.equal([0, 1]);
    expect((await cli.stop()).code).to.equal(0);
  });

  it('connections spread over both workers; /stats, / and /metrics show per-worker counts that add up; SIGTERM ends with the final stats', async function () {
    const { cli, port, stateDir } = await startWithWorkers(cleanup, ['--workers', '2']);
    const held = [];
    for (let i = 0; i < 6; i++) held.push(await greeted(cleanup, port));
    // Each goes to the worker with fewer active connections: 3 and 3.
    const threads = new Set(held.map(({ thread }) => thread));
    expect(threads.size, `worker threads named in the greetings: ${[...threads].join(', ')}`).to.equal(2);

    const stats = JSON.parse(await curlLocalhost(stateDir, port, '/stats')) as WorkersListenerStats;
    expect(stats.workers).to.have.length(2);
    expect(stats.accepted).to.equal(7); // the six held, and curl's own
    expect(sumOfWorkers(stats, 'accepted')).to.equal(stats.accepted);
    expect(sumOfWorkers(stats, 'active')).to.equal(stats.active);
    for (const worker of stats.workers) expect(worker.active, `worker ${worker.id}'s active connections`).to.be.at.least(3);
    expect(stats.workers.map((worker) => String(worker.threadId)).sort()).to.deep.equal([...threads].sort());

    // The live page's per-worker chart and table: test/live_page.test.ts, in a browser.
    expect(await curlLocalhost(stateDir, port, '/')).to.include('<table id="workers"');
    const metrics = await curlLocalhost(stateDir, port, '/metrics');
    expect(metrics).to.match(/^native_tls_listener_connections_accepted_total 9$/m);
    expect(metrics).to.match(/worker="0"/);
    expect(metrics).to.match(/worker="1"/);

    for (const { client } of held) client.destroy();
    expect((await cli.stop()).code).to.equal(0);
    const final = cli.finalStats() as WorkersListenerStats;
    expect(final.accepted).to.equal(9);
    expect(final.closed).to.equal(9);
    expect(final.leaked).to.equal(0);
    expect(final.workers).to.have.length(2);
    expect(sumOfWorkers(final, 'accepted')).to.equal(9);
    expect(sumOfWorkers(final, 'closed')).to.equal(9);
  });

  it('SIGHUP reloads the certificate in every worker', async function () {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ntl-cli-workers-'));
    cleanup.add(() => fs.rm(dir, { recursive: true, force: true }));
    const cert = path.join(dir, 'server.pem');
    const key = path.join(dir, 'server.key');
    await fs.writeFile(cert, pki.server.cert);
    await fs.writeFile(key, pki.server.key);
    const { cli, port } = await startWithWorkers(cleanup, ['--workers', '2', '--cert', cert, '--key', key]);

    await fs.writeFile(`${key}.tmp`, pki.rsaServer.key);
    await fs.rename(`${key}.tmp`, key);
    await fs.writeFile(`${cert}.tmp`, pki.rsaServer.cert);
    await fs.rename(`${cert}.tmp`, cert);
    cli.child.kill('SIGHUP');
    await cli.logged(/^native-tls-listener: certificates reloaded \(SIGHUP\)$/);
    // Two held connections: the second goes to the other worker.
    const first = await greeted(cleanup, port);
    const second = await greeted(cleanup, port);
    expect(first.thread).to.not.equal(second.thread);
    for (const { client } of [first, second]) expect(client.serverCommonName()).to.equal('rsa.server.test');
    expect((await cli.stop()).code).to.equal(0);
  });

  it('--log-tls-errors: a failed TLS setup in a worker is logged by the main thread, naming the worker', async function () {
    const { cli, port } = await startWithWorkers(cleanup, ['--workers', '2', '--log-tls-errors']);
    const raw = await rawConnect(cleanup, port);
    raw.socket.write('this is not a ClientHello\r\n\r\n');
    await cli.logged(/^native-tls-listener: TLS setup of connection 1 of worker [01] from 127\.0\.0\.1 failed: ERR_/);
    expect((await cli.stop()).code).to.equal(0);
    expect(cli.finalStats().handshakes.failed).to.equal(1);
  });

  it('--log-format json: listening and stopped carry the workers', async function () {
    const cli = spawnCliProcess(cleanup, ['--port', '0', '--state-dir', stateDirFor(cleanup), '--workers', '2', '--log-format', 'json']);
    await waitUntil(() => cli.stdout.includes('"event":"listening"') || cli.exit !== null, 'the listening event', 15_000);
    const listening = JSON.parse(cli.stdout.split('\n')[0] ?? '') as { event: string; workers?: number; message: string };
    expect(listening).to.include({ event: 'listening', workers: 2 });
    expect(listening.message).to.match(/\(native backend, 2 worker threads\)$/);
    expect((await cli.stop()).code).to.equal(0);
    const stopped = JSON.parse(cli.stdout.trim().split('\n').at(-1) ?? '') as { event: string; stats: WorkersListenerStats };
    expect(stopped.event).to.equal('stopped');
    expect(stopped.stats.workers).to.have.length(2);
  });

  it('--workers without a number starts one per core', async function () {
    const { cli } = await startWithWorkers(cleanup, ['--workers']);
    const cores = os.availableParallelism();
    expect(cli.stdout).to.include(`(native backend, ${cores} worker thread${cores === 1 ? '' : 's'})`);
    expect((await cli.stop()).code).to.equal(0);
    expect((cli.finalStats() as WorkersListenerStats).workers).to.have.length(cores);
  });
});

describe('CLI --workers: checked like the other flags', function () {
  const cleanup = useCleanup();
  const usageErrors: Array<[string, string[], RegExp]> = [
    ['--workers 0', ['--workers', '0'], /option '--workers \[n\]' argument '0' is invalid. Expected a whole number of worker threads from 1 to 1024/],
    ['--workers abc', ['--workers', 'abc'], /option '--workers \[n\]' argument 'abc' is invalid/],
    ['--workers 1025', ['--workers', '1025'], /argument '1025' is invalid/],
    ['--workers with --backend js', ['--workers', '2', '--backend', 'js'], /--workers needs the native backend/],
    ['--workers with --upgrade', ['--workers', '2', '--upgrade'], /--upgrade cannot be used with --workers/],
    ['--workers with --control-socket', ['--workers', '2', '--control-socket', '/tmp/none.sock'], /--control-socket cannot be used with --workers/],
  ];
  for (const [what, args, message] of usageErrors) {
    it(`${what}: the error and the usage on stderr, exit 2, nothing started`, async function () {
      const stateDir = `${stateDirFor(cleanup)}/state`;
      const cli = spawnCliProcess(cleanup, [...args, '--port', '0', '--state-dir', stateDir]);
      expect((await cli.ended()).code).to.equal(2);
      expect(cli.stderr).to.match(message);
      expect(cli.stderr).to.include('Usage: native-tls-listener [options]');
      expect(cli.stdout).to.equal('');
      await fs.access(stateDir).then(
        () => expect.fail('a state directory was created'),
        () => undefined,
      );
    });
  }

  it('--workers with --defer-accept and --max-connections-per-address: the limits hold for the listener as a whole', async function () {
    if (!nativeAvailable()) this.skip();
    this.timeout(60_000);
    const stateDir = stateDirFor(cleanup);
    const cli = spawnCliProcess(cleanup, ['--workers', '2', '--defer-accept', '5', '--max-connections-per-address', '2', '--port', '0', '--state-dir', stateDir]);
    const port = await cli.started();
    // Two clients from 127.0.0.1 are served, by either worker; the third is closed at accept.
    await greeted(cleanup, port);
    await greeted(cleanup, port);
    const third = tlsConnect(cleanup, port);
    await waitUntil(() => third.closed, 'the third client from 127.0.0.1 to be closed');
    expect(third.secure).to.equal(false);
    expect((await cli.stop()).code).to.equal(0);
    expect(cli.finalStats().rejected.maxConnectionsPerAddress).to.equal(1);
  });

  it('--workers with --max-pending-handshakes 1 and --max-queued-connections 0: while a silent client holds the slot, a newcomer is reset', async function () {
    if (process.platform !== 'linux' || !nativeAvailable()) this.skip(); // the accept queue's length is read with TCP_INFO
    this.timeout(60_000);
    const stateDir = stateDirFor(cleanup);
    const cli = spawnCliProcess(cleanup, ['--workers', '2', '--max-pending-handshakes', '1', '--max-queued-connections', '0', '--port', '0', '--state-dir', stateDir]);
    const port = await cli.started();
    // Sends nothing: its handshake stalls in a worker and holds the one setup slot.
    const silent = await rawConnect(cleanup, port);
    const newcomer = tlsConnect(cleanup, port);
    await waitUntil(() => newcomer.closed, 'the newcomer to be reset');
    expect(newcomer.secure).to.equal(false);
    expect(silent.closed, 'the client holding the slot').to.equal(false);
    expect((await cli.stop()).code).to.equal(0);
    expect(cli.finalStats().rejected.maxQueuedConnections).to.equal(1);
    expect(cli.finalStats().accepted).to.equal(1);
  });

  it('--help lists --workers [n]', async function () {
    const cli = spawnCliProcess(cleanup, ['--help']);
    expect((await cli.ended()).code).to.equal(0);
    expect(cli.stdout).to.match(/--workers \[n\] +serve connections on n worker threads/);
  });
});
