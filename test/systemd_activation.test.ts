// Started by systemd: the listening socket passed in (socket activation) read like
// sd_listen_fds(3), and the CLI serving it when started by the real systemd-socket-activate.
import { expect } from 'chai';
import { systemdListenFds } from '../src/index.js';
import { spawnCliProcess, stateDirFor } from './support/cli_process.js';
import { listeningServer, closeServer } from './support/sockets.js';
import { BACKENDS, tlsConnect, useCleanup, waitUntil, within } from './support/tls_harness.js';
import type { Cleanup, ReportedError } from './support/tls_harness.js';
import type { CliProcess } from './support/cli_process.js';

function failureOf(action: () => unknown): ReportedError {
  try {
    action();
  } catch (error) {
    return error as ReportedError;
  }
  throw new Error('expected it to throw');
}

describe('systemdListenFds reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES like sd_listen_fds', function () {
  it('returns the descriptors from 3 with their names, and removes the variables', function () {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: '4242', LISTEN_FDS: '2', LISTEN_FDNAMES: 'tls:admin', OTHER: 'kept' };
    expect(systemdListenFds({ env, pid: 4242 })).to.deep.equal([
      { fd: 3, name: 'tls' },
      { fd: 4, name: 'admin' },
    ]);
    expect(env).to.deep.equal({ OTHER: 'kept' });
  });

  it("names them 'unknown' without LISTEN_FDNAMES, and keeps the variables when asked to", function () {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: '7', LISTEN_FDS: '1' };
    expect(systemdListenFds({ env, pid: 7, unsetEnvironment: false })).to.deep.equal([{ fd: 3, name: 'unknown' }]);
    expect(env).to.deep.equal({ LISTEN_PID: '7', LISTEN_FDS: '1' });
  });

  it('returns none when the variables are meant for another process or absent, and still removes them', function () {
    const env: NodeJS.ProcessEnv = { LISTEN_PID: '4242', LISTEN_FDS: '1' };
    expect(systemdListenFds({ env, pid: 4243 })).to.deep.equal([]);
    expect(env).to.deep.equal({});
    expect(systemdListenFds({ env: {}, pid: 1 })).to.deep.equal([]);
  });

  it('throws ERR_INVALID_LISTEN_FDS for variables that do not parse or disagree', function () {
    for (const env of [
      { LISTEN_PID: 'me', LISTEN_FDS: '1' },
      { LISTEN_PID: '9', LISTEN_FDS: '-1' },
      { LISTEN_PID: '9', LISTEN_FDS: '2', LISTEN_FDNAMES: 'only-one' },
    ]) {
      const copy: NodeJS.ProcessEnv = { ...env };
      const error = failureOf(() => systemdListenFds({ env: copy, pid: 9 }));
      expect(error.code, `${JSON.stringify(env)}: ${error.message}`).to.equal('ERR_INVALID_LISTEN_FDS');
      expect(copy).to.deep.equal({});
    }
  });

  it('refuses a count larger than the descriptors the process has open, in one short line', function () {
    for (const count of ['100000', '50000000', '2147483000']) {
      const error = failureOf(() => systemdListenFds({ env: { LISTEN_PID: '9', LISTEN_FDS: count }, pid: 9 }));
      expect(error.code, error.message).to.equal('ERR_INVALID_LISTEN_FDS');
      expect(error.message).to.include(`LISTEN_FDS says ${count} descriptors`);
      expect(error.message.length).to.be.below(200);
    }
  });
});

describe('CLI: a LISTEN_FDS the manager cannot have passed', function () {
  this.timeout(30_000);
  const cleanup = useCleanup();

  it('fails fast with a short coded error instead of spinning', async function () {
    // LISTEN_PID must be the CLI's own pid: the shell exports its $$ and execs node in its place.
    const cli = spawnCliProcess(cleanup, ['--state-dir', stateDirFor(cleanup)], {
      env: { LISTEN_FDS: '2147483000' },
      under: ['sh', '-c', 'export LISTEN_PID=$$; exec "$0" "$@"'],
    });
    await cli.ended('the CLI to refuse LISTEN_FDS=2147483000');
    expect(cli.exit?.code, cli.describe()).to.equal(1);
    expect(cli.stderr).to.include('LISTEN_FDS says 2147483000 descriptors');
    expect(cli.stderr.length).to.be.below(1000);
  });
});

async function freePort(): Promise<number> {
  const { server, port } = await listeningServer();
  await closeServer(server);
  return port;
}

/** systemd-socket-activate listening on a free loopback port, the CLI its command. */
async function activate(cleanup: Cleanup, cliArgs: readonly string[], activateArgs: readonly string[] = []): Promise<{ cli: CliProcess; port: number }> {
  const port = await freePort();
  const cli = spawnCliProcess(cleanup, ['--state-dir', stateDirFor(cleanup), ...cliArgs], { under: ['systemd-socket-activate', '--listen', `127.0.0.1:${port}`, ...activateArgs] });
  // It prints this once it listens, before anything connects.
  await waitUntil(() => cli.stderr.includes(`Listening on 127.0.0.1:${port}`) || cli.exit !== null, 'systemd-socket-activate to listen', 10_000);
  expect(cli.exit, cli.describe()).to.equal(null);
  return { cli, port };
}

for (const backend of BACKENDS) {
  describe(`CLI: started by systemd socket activation serves the socket passed in (${backend} backend)`, function () {
    this.timeout(30_000);
    const cleanup = useCleanup();

    it('the first client starts the CLI and is served on the passed socket', async function () {
      const { cli, port } = await activate(cleanup, ['--backend', backend, '--port', '1']);
      expect(cli.stdout).to.equal('');
      const client = tlsConnect(cleanup, port);
      expect(await client.line(0, 15_000)).to.match(/^native-tls-listener: /);
      client.socket.write('hello\n');
      expect(await client.line(1)).to.equal('hello');
      // The banner says where it listens: the passed socket, not --port.
      expect(await cli.started()).to.equal(port);
      expect(cli.stdout).to.include(`(${backend} backend)`);
      expect(cli.stdout).to.match(/^serving the socket systemd passed in \(fd 3, '\S+'\)$/m);
      expect((await cli.stop()).code).to.equal(0);
    });
  });
}

describe('CLI: several sockets passed in are chosen by name', function () {
  this.timeout(30_000);
  const cleanup = useCleanup();

  it('serves the one --socket-name names', async function () {
    const other = await freePort();
    const { cli, port } = await activate(cleanup, ['--socket-name', 'tls'], ['--listen', `127.0.0.1:${other}`, '--fdname', 'tls:admin']);
    // Connecting to either starts the CLI; the named socket is the one served.
    const client = tlsConnect(cleanup, port);
    expect(await client.line(0, 15_000)).to.match(/^native-tls-listener: /);
    expect(cli.stdout).to.match(/^serving the socket systemd passed in \(fd 3, 'tls'\)$/m);
    expect((await cli.stop()).code).to.equal(0);
  });

  it('refuses to guess without --socket-name, naming the sockets', async function () {
    const other = await freePort();
    const { cli, port } = await activate(cleanup, [], ['--listen', `127.0.0.1:${other}`, '--fdname', 'tls:admin']);
    tlsConnect(cleanup, port);
    await within(cli.exited, 'the CLI to refuse and exit', 15_000);
    expect(cli.exit?.code).to.equal(1);
    expect(cli.stderr).to.include("2 sockets were passed (fd 3 'tls', fd 4 'admin'); choose one with --socket-name");
  });
});

describe('CLI: socket activation with --workers serves the passed socket from worker threads', function () {
  this.timeout(30_000);
  const cleanup = useCleanup();

  it('the first client is served by a worker thread on the passed socket', async function () {
    const { cli, port } = await activate(cleanup, ['--workers', '2', '--port', '1']);
    const client = tlsConnect(cleanup, port);
    expect(await client.line(0, 15_000)).to.match(/^native-tls-listener: connection \d+, .*worker thread \d+;/);
    expect(await cli.started()).to.equal(port);
    expect(cli.stdout).to.include('(native backend, 2 worker threads)');
    expect(cli.stdout).to.match(/^serving the socket systemd passed in \(fd 3, '\S+'\)$/m);
    client.socket.destroy();
    expect((await cli.stop()).code).to.equal(0);
    expect(cli.finalStats().accepted).to.equal(1);
  });
});
