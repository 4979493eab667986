// The `native-tls-listener` command, run as a user runs it: spawned from dist/, talked to by
// real clients (openssl s_client, curl, Node's tls), stopped by signals.
import { execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { nativeAvailable } from '../src/index.js';
import type { ListenerStats } from '../src/index.js';
import { repoRoot } from './support/paths.js';
import { CliProcess } from './support/cli_process.js';
import type { CliExit } from './support/cli_process.js';
import { writePkiFiles } from './support/pki.js';
import type { PkiFiles } from './support/pki.js';
import { Client, listeningServer, closeServer, waitUntil, within } from './support/sockets.js';

const execFileAsync = promisify(execFile);
const CLI = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const VERSION = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const PROCESS_WAIT_MS = 15_000;

type Exit = CliExit;
type Cli = CliProcess;

const running = new Set<Cli>();
const temporary: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-cli-test-'));
  temporary.push(dir);
  return dir;
}

function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Cli {
  const cli = new CliProcess(spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  running.add(cli);
  return cli;
}

/** Runs the CLI to its end (for the runs that must not start). */
async function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Cli & { exit: Exit }> {
  const cli = spawnCli(args, env);
  await within(cli.exited, `the CLI to exit (${args.join(' ')})`, PROCESS_WAIT_MS);
  return cli as Cli & { exit: Exit };
}

/** A CLI on a free port with its own state directory. */
async function startCli(args: readonly string[] = [], stateDir = tempDir()): Promise<{ cli: Cli; port: number; stateDir: string }> {
  const cli = spawnCli(['--port', '0', '--state-dir', stateDir, ...args]);
  const port = await cli.started();
  return { cli, port, stateDir };
}

function bannerFingerprint(banner: string): string {
  const match = /fingerprint \(SHA-256\): ([0-9A-F:]{95})$/m.exec(banner);
  if (!match?.[1]) throw new Error(`no fingerprint in the banner:\n${banner}`);
  return match[1];
}

async function opensslFingerprint(file: string): Promise<string> {
  const { stdout } = await execFileAsync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', file]);
  return stdout.trim().replace(/^.*Fingerprint=/i, '');
}

/** A printed command, run as it stands (the test paths need no shell quoting). */
function printedCommand(banner: string, program: 'openssl' | 'curl'): string[] {
  const line = banner.split('\n').find((text) => text.trimStart().startsWith(`${program} `));
  if (line === undefined) throw new Error(`no ${program} command in the banner:\n${banner}`);
  return line.trim().split(' ');
}

/** Runs openssl s_client with `input` on stdin; it ends when the server closes. */
function sClient(args: readonly string[], input: string): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return within(
    new Promise((resolve, reject) => {
      const child = spawn('openssl', ['s_client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.once('error', reject);
      child.once('close', (code) => resolve({ stdout, stderr, code }));
      child.stdin.end(input);
    }),
    `openssl s_client ${args.join(' ')}`,
    PROCESS_WAIT_MS,
  );
}

async function curl(args: readonly string[]): Promise<string> {
  const { stdout } = await execFileAsync('curl', ['-sS', '--max-time', '10', ...args]);
  return stdout;
}

/** curl with the CA, SNI `localhost` and the port: what a browser on this machine does. */
function curlLocalhost(stateDir: string, port: number, pathname: string, extra: readonly string[] = []): Promise<string> {
  return curl([
    '--cacert',
    path.join(stateDir, 'ca.pem'),
    '--resolve',
    `localhost:${port}:127.0.0.1`,
    ...extra,
    `https://localhost:${port}${pathname}`,
  ]);
}

/** A Node TLS client; with an IP address as host it sends no SNI. */
async function tlsClient(port: number, options: tls.ConnectionOptions = {}): Promise<Client> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
  await within(
    new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    }),
    `a TLS connection to port ${port}`,
  );
  return new Client(socket);
}

function finalStats(stdout: string): ListenerStats {
  const match = /^final stats: (.*)$/m.exec(stdout);
  if (!match?.[1]) throw new Error(`no final stats line in:\n${stdout}`);
  return JSON.parse(match[1]) as ListenerStats;
}

afterEach(async function () {
  for (const cli of running) {
    if (cli.exit === null) cli.child.kill('SIGKILL');
    await cli.exited;
  }
  running.clear();
});

after(function () {
  for (const dir of temporary.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('CLI: command line', function () {
  it('--help prints the usage with every flag and exits 0', async function () {
    const { exit, stdout } = await runCli(['--help']);
    expect(exit.code).to.equal(0);
    for (const flag of [
      '--host',
      '--port',
      '--state-dir',
      '--cert',
      '--key',
      '--ca',
      '--sni-cert',
      '--sni-key',
      '--alpn',
      '--request-client-cert',
      '--handshake-timeout',
      '--backend',
      '--log-tls-errors',
      '--log-format',
      '--help',
      '--version',
    ]) {
      expect(stdout).to.include(flag);
    }
    expect(stdout).to.match(/^Usage: native-tls-listener \[options\]/);
  });

  it("the README's CLI section shows --help exactly as it prints", async function () {
    // The default state directory in the help depends on HOME; the README shows /home/you.
    const { exit, stdout } = await runCli(['--help'], { HOME: '/home/you', XDG_CONFIG_HOME: '' });
    expect(exit.code).to.equal(0);
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const block = /<!-- cli-help:start -->\n```text\n\$ native-tls-listener --help\n([\s\S]*?)```\n<!-- cli-help:end -->/.exec(readme);
    expect(block, 'the README has the --help block').to.not.equal(null);
    expect(block?.[1]).to.equal(stdout);
  });

  it('--version prints the package version and exits 0', async function () {
    const { exit, stdout } = await runCli(['--version']);
    expect(exit.code).to.equal(0);
    expect(stdout.trim()).to.equal(VERSION);
  });

  const usageErrors: Array<[string, string[], RegExp]> = [
    ['an unknown flag', ['--bogus'], /unknown option '--bogus'/],
    ['a port that is not a number', ['--port', 'abc'], /'--port <number>' argument 'abc' is invalid/],
    ['a port out of range', ['--port', '65536'], /argument '65536' is invalid/],
    ['an unknown backend', ['--backend', 'foo'], /Allowed choices are native, js/],
    ['a handshake timeout of 0', ['--handshake-timeout', '0'], /argument '0' is invalid/],
    ['an empty ALPN protocol', ['--alpn', 'h2,'], /argument 'h2,' is invalid/],
    ['--cert without --key', ['--cert', 'server.pem'], /--key is required with --cert/],
    ['--key without --cert', ['--key', 'server.key'], /--cert is required with --key/],
    ['--sni-cert without --sni-key', ['--sni-cert', 'sni.pem'], /--sni-key is required with --sni-cert/],
    ['--ca without --cert', ['--ca', 'ca.pem'], /--ca needs --cert and --key/],
    ['a stray argument', ['serve'], /too many arguments/],
    ['an unknown log format', ['--log-format', 'xml'], /Allowed choices are text, json/],
  ];
  for (const [what, args, message] of usageErrors) {
    it(`${what}: the error and the usage on stderr, exit 2, nothing started`, async function () {
      const stateDir = path.join(tempDir(), 'state');
      const { exit, stdout, stderr } = await runCli([...args, '--state-dir', stateDir]);
      expect(exit.code).to.equal(2);
      expect(stderr).to.match(message);
      expect(stderr).to.include('Usage: native-tls-listener [options]');
      expect(stdout).to.equal('');
      expect(fs.existsSync(stateDir), 'no state directory created').to.equal(false);
    });
  }
});

describe('CLI: start-up failures', function () {
  let pki: PkiFiles;

  before(async function () {
    pki = await writePkiFiles(path.join(tempDir(), 'pki'));
  });

  async function expectStartupFailure(args: string[], message: RegExp): Promise<void> {
    const { exit, stdout, stderr } = await runCli(['--port', '0', ...args]);
    expect(exit.code, stderr).to.equal(1);
    expect(stderr).to.match(message);
    expect(stdout, 'no banner').to.not.include('listening on');
  }

  it('a missing certificate file: exit 1 naming the file', async function () {
    const missing = path.join(tempDir(), 'missing.pem');
    await expectStartupFailure(['--cert', missing, '--key', pki.server.key], new RegExp(`${missing}: no such file`));
  });

  it('a file that is not a certificate: exit 1 naming the file', async function () {
    const garbage = path.join(tempDir(), 'garbage.pem');
    fs.writeFileSync(garbage, 'not a certificate\n');
    await expectStartupFailure(['--cert', garbage, '--key', pki.server.key], new RegExp(`${garbage}: not a PEM certificate`));
  });

  it('a key that is not a key: exit 1 naming the key file', async function () {
    await expectStartupFailure(['--cert', pki.server.cert, '--key', pki.server.cert], new RegExp(`${pki.server.cert}: not a PEM private key`));
  });

  it('a key that does not match the certificate: exit 1 naming both files', async function () {
    await expectStartupFailure(
      ['--cert', pki.server.cert, '--key', pki.sni.key],
      new RegExp(`${pki.sni.key}: the key does not match the certificate in ${pki.server.cert}`),
    );
  });

  it('a broken --sni-cert: exit 1 naming the file', async function () {
    const missing = path.join(tempDir(), 'no-sni.pem');
    await expectStartupFailure(['--sni-cert', missing, '--sni-key', pki.sni.key, '--state-dir', tempDir()], new RegExp(`${missing}: no such file`));
  });

  it('a port in use: exit 1 with the address and the reason', async function () {
    const { server, port } = await listeningServer('127.0.0.1');
    try {
      const { exit, stdout, stderr } = await runCli(['--state-dir', tempDir(), '--port', String(port)]);
      expect(exit.code).to.equal(1);
      expect(stderr).to.include(`cannot listen on 127.0.0.1:${port}`);
      expect(stderr).to.include('already in use (EADDRINUSE)');
      expect(stdout).to.not.include('listening on');
    } finally {
      await closeServer(server);
    }
  });

  it('a privileged port without privileges: exit 1 with the address and "permission denied"', async function () {
    if (process.getuid?.() === 0) this.skip(); // root may bind any port
    const { exit, stderr } = await runCli(['--state-dir', tempDir(), '--port', '1']);
    expect(exit.code).to.equal(1);
    expect(stderr).to.include('cannot listen on 127.0.0.1:1: permission denied');
  });

  it('an address this machine does not have: exit 1 with the address', async function () {
    // 192.0.2.0/24 is reserved for documentation and never assigned.
    const { exit, stderr } = await runCli(['--state-dir', tempDir(), '--host', '192.0.2.1', '--port', '0']);
    expect(exit.code).to.equal(1);
    expect(stderr).to.include('cannot listen on 192.0.2.1:0');
    expect(stderr).to.include('EADDRNOTAVAIL');
  });

  it('a state directory that cannot be created: exit 1 naming it', async function () {
    const file = path.join(tempDir(), 'a-file');
    fs.writeFileSync(file, '');
    const { exit, stderr } = await runCli(['--state-dir', path.join(file, 'state'), '--port', '0']);
    expect(exit.code).to.equal(1);
    expect(stderr).to.include(`cannot keep the default certificates in ${path.join(file, 'state')}: ENOTDIR`);
  });

  it('a CA key that does not match the CA: exit 1 naming it, and the CA is left alone', async function () {
    const stateDir = tempDir();
    const { cli } = await startCli([], stateDir);
    await cli.stop();
    const caBefore = fs.readFileSync(path.join(stateDir, 'ca.pem'), 'utf8');
    fs.copyFileSync(path.join(stateDir, 'server.key'), path.join(stateDir, 'ca.key'));
    const { exit, stderr } = await runCli(['--state-dir', stateDir, '--port', '0']);
    expect(exit.code).to.equal(1);
    expect(stderr).to.include(`${path.join(stateDir, 'ca.key')}: does not match`);
    expect(fs.readFileSync(path.join(stateDir, 'ca.pem'), 'utf8')).to.equal(caBefore);
  });
});

describe('CLI: the default PKI', function () {
  it('is created on first run: a CA, a server and a localhost certificate, keys readable by the owner only', async function () {
    const stateDir = path.join(tempDir(), 'nested', 'state');
    const { cli } = await startCli([], stateDir);
    expect(cli.stdout).to.include(`state directory: ${stateDir} (a new CA was created in it)`);
    for (const name of ['ca', 'server', 'sni']) {
      expect(fs.statSync(path.join(stateDir, `${name}.key`)).mode & 0o777, `${name}.key`).to.equal(0o600);
      expect(fs.existsSync(path.join(stateDir, `${name}.pem`)), `${name}.pem`).to.equal(true);
    }
    expect(fs.statSync(stateDir).mode & 0o777).to.equal(0o700);
    const server = new X509Certificate(fs.readFileSync(path.join(stateDir, 'server.pem')));
    expect(server.subject).to.equal('CN=native-tls-listener server');
    expect(server.subjectAltName).to.include('IP Address:127.0.0.1');
    const ca = new X509Certificate(fs.readFileSync(path.join(stateDir, 'ca.pem')));
    expect(server.checkIssued(ca) && server.verify(ca.publicKey)).to.equal(true);
  });

  it('prints the CA fingerprint as openssl does, and keeps it across runs', async function () {
    const first = await startCli();
    const fingerprint = bannerFingerprint(first.cli.stdout);
    expect(fingerprint).to.equal(await opensslFingerprint(path.join(first.stateDir, 'ca.pem')));
    await first.cli.stop();
    const second = await startCli([], first.stateDir);
    expect(bannerFingerprint(second.cli.stdout)).to.equal(fingerprint);
    expect(second.cli.stdout).to.not.include('a new CA was created');
  });

  it('re-issues a missing server certificate with the same CA', async function () {
    const first = await startCli();
    await first.cli.stop();
    fs.rmSync(path.join(first.stateDir, 'sni.pem'));
    const second = await startCli([], first.stateDir);
    expect(bannerFingerprint(second.cli.stdout)).to.equal(bannerFingerprint(first.cli.stdout));
    expect(second.cli.stdout).to.include('re-issued by the same CA: sni.pem');
    expect(JSON.parse(await curlLocalhost(second.stateDir, second.port, '/stats'))).to.have.property('accepted');
  });

  it('two first runs at once end up with one CA', async function () {
    const stateDir = path.join(tempDir(), 'shared');
    const [a, b] = await Promise.all([startCli([], stateDir), startCli([], stateDir)]);
    expect(bannerFingerprint(a.cli.stdout)).to.equal(bannerFingerprint(b.cli.stdout));
    expect(bannerFingerprint(a.cli.stdout)).to.equal(await opensslFingerprint(path.join(stateDir, 'ca.pem')));
    expect(fs.readdirSync(path.dirname(stateDir))).to.deep.equal(['shared']);
  });

  it("lives in the user's config directory without --state-dir", async function () {
    const config = tempDir();
    const cli = spawnCli(['--port', '0'], { XDG_CONFIG_HOME: config });
    await cli.started();
    const stateDir = path.join(config, 'native-tls-listener');
    expect(cli.stdout).to.include(`state directory: ${stateDir}`);
    expect(bannerFingerprint(cli.stdout)).to.equal(await opensslFingerprint(path.join(stateDir, 'ca.pem')));
  });
});

describe('CLI: the banner', function () {
  it('prints the version, address, backend, fingerprint and two commands that work as printed', async function () {
    const { cli, port, stateDir } = await startCli();
    const banner = cli.stdout;
    const ca = path.join(stateDir, 'ca.pem');
    expect(banner).to.include(`native-tls-listener ${VERSION}`);
    expect(banner).to.match(new RegExp(`^listening on 127\\.0\\.0\\.1:${port} \\((native|js) backend\\)$`, 'm'));
    expect(banner).to.match(/^CA fingerprint \(SHA-256\): /m);
    expect(printedCommand(banner, 'openssl')).to.deep.equal(['openssl', 's_client', '-quiet', '-verify_return_error', '-connect', `127.0.0.1:${port}`, '-CAfile', ca]);
    expect(printedCommand(banner, 'curl')).to.deep.equal(['curl', '--cacert', ca, `https://localhost:${port}/`]);

    const [, ...opensslArgs] = printedCommand(banner, 'openssl');
    const session = await sClient(opensslArgs.slice(1), 'hello\nquit\n');
    expect(session.stdout).to.match(/^native-tls-listener: connection 1, TLSv1\.3, no SNI;/);
    expect(session.stdout).to.include('hello\nbye\n');
    expect(session.stderr, 'the chain verifies against the CA').to.include('verify return:1');
    expect(session.stderr).to.not.include('verify error');

    const [, ...curlArgs] = printedCommand(banner, 'curl');
    expect(await curl(curlArgs)).to.include('<title>native-tls-listener</title>');
  });

  it('says which backend serves: --backend js', async function () {
    const { cli, port, stateDir } = await startCli(['--backend', 'js']);
    expect(cli.stdout).to.include(`listening on 127.0.0.1:${port} (js backend)`);
    expect(JSON.parse(await curlLocalhost(stateDir, port, '/stats'))).to.include({ accepted: 1 });
  });

  it('says which backend serves: --backend native', async function () {
    if (!nativeAvailable()) this.skip();
    const { cli, port } = await startCli(['--backend', 'native']);
    expect(cli.stdout).to.include(`listening on 127.0.0.1:${port} (native backend)`);
  });
});

describe('CLI: clients without SNI get the line protocol', function () {
  let port: number;
  let stateDir: string;

  beforeEach(async function () {
    ({ port, stateDir } = await startCli());
  });

  it('echoes lines, answers stats with JSON, ends on quit (openssl s_client, no SNI)', async function () {
    const session = await sClient(
      ['-quiet', '-noservername', '-connect', `127.0.0.1:${port}`, '-CAfile', path.join(stateDir, 'ca.pem'), '-verify_return_error', '-verify_ip', '127.0.0.1'],
      'hello there\nstats\nquit\nnot reached\n',
    );
    const lines = session.stdout.split('\n');
    expect(lines[0]).to.match(/^native-tls-listener: connection 1, TLSv1\.3, no SNI; commands: stats, quit, help/);
    expect(lines[1]).to.equal('hello there');
    const stats = JSON.parse(lines[2] ?? '') as ListenerStats;
    expect(stats).to.include({ accepted: 1, active: 1, leaked: 0 });
    expect(stats.sni).to.deep.equal({ sniCredential: 0, primaryCredential: 1 });
    expect(lines.slice(3)).to.deep.equal(['bye', '']);
    expect(session.code).to.equal(0);
  });

  it('closes a connection whose line is longer than 4 KiB, with an error line', async function () {
    const client = await tlsClient(port);
    await client.line(0);
    client.socket.write(`${'x'.repeat(5000)}\n`);
    await client.whenClosed();
    expect(client.received.split('\n')[1]).to.equal('error: line longer than 4096 bytes');
  });

  it('serves a line of exactly 4 KiB', async function () {
    const client = await tlsClient(port);
    client.socket.write(`${'y'.repeat(4096)}\nquit\n`);
    await client.whenClosed();
    expect(client.received.split('\n').slice(1)).to.deep.equal(['y'.repeat(4096), 'bye', '']);
  });
});

describe('CLI: clients with SNI get HTTPS', function () {
  let port: number;
  let stateDir: string;

  beforeEach(async function () {
    ({ port, stateDir } = await startCli());
  });

  it('/stats: the statistics as JSON, over a chain that verifies for localhost', async function () {
    const stats = JSON.parse(await curlLocalhost(stateDir, port, '/stats')) as ListenerStats;
    expect(stats).to.include({ accepted: 1, active: 1, closed: 0, leaked: 0 });
    expect(stats.sni).to.deep.equal({ sniCredential: 1, primaryCredential: 0 });
  });

  it('/metrics: the Prometheus text', async function () {
    const response = await curlLocalhost(stateDir, port, '/metrics', ['-i']);
    expect(response).to.match(/^content-type: text\/plain; version=0\.0\.4; charset=utf-8\r$/m);
    expect(response).to.match(/^native_tls_listener_connections_accepted_total 1$/m);
    expect(response).to.match(/^native_tls_listener_handshakes_by_credential_total\{credential="sni"\} 1$/m);
  });

  it('/: the live page, the same bytes for every visit, that draws itself from /stats (test/live_page.test.ts runs it)', async function () {
    const page = await curlLocalhost(stateDir, port, '/', ['-i']);
    expect(page).to.match(/^content-type: text\/html; charset=utf-8\r$/m);
    expect(page).to.include("fetch('/stats'");
    expect(page).to.match(/<figure id="chart-traffic"/);
    // Served from one buffer: the statistics changed between the visits (curl's connections), the page did not.
    const body = (response: string): string => response.slice(response.indexOf('\r\n\r\n'));
    expect(body(await curlLocalhost(stateDir, port, '/', ['-i']))).to.equal(body(page));
  });

  it('anything else: 404', async function () {
    const status = await curlLocalhost(stateDir, port, '/nope', ['-o', '/dev/null', '-w', '%{http_code}']);
    expect(status).to.equal('404');
  });
});

describe('CLI: SIGINT and SIGTERM close gracefully, print the final stats and exit 0', function () {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} with a line-protocol connection open`, async function () {
      const { cli, port } = await startCli();
      const client = await tlsClient(port);
      await client.line(0);
      const exit = await cli.stop(signal);
      await client.whenClosed();
      expect(client.error).to.equal(null);
      expect(exit).to.deep.equal({ code: 0, signal: null });
      const stats = finalStats(cli.stdout);
      expect(stats).to.include({ accepted: 1, closed: 1, active: 0, leaked: 0 });
      expect(cli.stdout.trimEnd().split('\n').at(-1)).to.match(/^final stats: /);
    });
  }
});

describe('CLI: a second signal does not wait for connections', function () {
  it('exits at once with status 1 and the stats so far', async function () {
    const { cli, port } = await startCli();
    // A client that keeps its side open after the server ends: the graceful close would wait.
    const stubborn = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, allowHalfOpen: true } as tls.ConnectionOptions);
    stubborn.on('error', () => undefined);
    const client = new Client(stubborn);
    await client.line(0);
    cli.child.kill('SIGTERM');
    await waitUntil(() => client.ended, 'the server to end the connection');
    const started = Date.now();
    const exit = await cli.stop('SIGTERM');
    expect(Date.now() - started).to.be.below(2000);
    expect(exit.code).to.equal(1);
    expect(cli.stderr).to.include('SIGTERM again: exiting without waiting for connections');
    expect(finalStats(cli.stdout)).to.include({ accepted: 1, active: 1 });
    client.destroy();
  });
});

describe('CLI: flags for the real job', function () {
  let pki: PkiFiles;

  before(async function () {
    pki = await writePkiFiles(path.join(tempDir(), 'pki'));
  });

  it('--cert --key --ca: serves that chain and prints the fingerprint of the CA', async function () {
    const stateDir = path.join(tempDir(), 'unused');
    const { cli, port } = await startCli(['--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca.cert], stateDir);
    expect(bannerFingerprint(cli.stdout)).to.equal(await opensslFingerprint(pki.ca.cert));
    expect(cli.stdout).to.include(`-CAfile ${pki.ca.cert}`);
    expect(cli.stdout).to.include('no SNI certificate (--sni-cert), so clients with SNI get the line protocol too');
    expect(fs.existsSync(stateDir), 'the default PKI is not created').to.equal(false);
    // Without an SNI credential a client that sends SNI is served by the primary: the protocol.
    const client = await tlsClient(port, { servername: 'server.test', ca: fs.readFileSync(pki.ca.cert), rejectUnauthorized: true });
    expect(await client.line(0)).to.match(/^native-tls-listener: connection 1/);
    client.destroy();
  });

  it('--cert --key without --ca: the printed openssl command verifies the served chain against that certificate', async function () {
    const { cli } = await startCli(['--cert', pki.server.cert, '--key', pki.server.key]);
    const certificate = new X509Certificate(fs.readFileSync(pki.server.cert));
    expect(certificate.checkIssued(certificate), 'the served certificate is not a root').to.equal(false);
    expect(cli.stdout).to.match(/^certificate fingerprint \(SHA-256\): /m);
    const [, ...opensslArgs] = printedCommand(cli.stdout, 'openssl');
    expect(opensslArgs).to.include('-verify_return_error');
    const session = await sClient(opensslArgs.slice(1), 'hello\nquit\n');
    expect(session.stderr, 'the chain verifies against the certificate').to.include('verify return:1');
    expect(session.stderr).to.not.include('verify error');
    expect(session.stdout).to.include('hello\nbye\n');
  });

  it('--sni-cert --sni-key: HTTPS with that certificate, at the name it is for', async function () {
    const { cli, port } = await startCli(['--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca.cert, '--sni-cert', pki.sni.cert, '--sni-key', pki.sni.key]);
    const command = printedCommand(cli.stdout, 'curl');
    expect(command).to.deep.equal(['curl', '--cacert', pki.sni.cert, '--resolve', `sni.test:${port}:127.0.0.1`, `https://sni.test:${port}/`]);
    const stats = JSON.parse(await curl(['--cacert', pki.ca.cert, '--resolve', `sni.test:${port}:127.0.0.1`, `https://sni.test:${port}/stats`])) as ListenerStats;
    expect(stats.sni.sniCredential).to.equal(1);
  });

  it('--alpn h2,http/1.1: HTTPS over h2 for curl, the client\'s first supported protocol for the line protocol', async function () {
    const { port, stateDir } = await startCli(['--alpn', 'h2,http/1.1']);
    const version = await curlLocalhost(stateDir, port, '/stats', ['--http2', '-o', '/dev/null', '-w', '%{http_version}']);
    expect(version).to.equal('2');
    const client = await tlsClient(port, { ALPNProtocols: ['x-unknown', 'http/1.1', 'h2'] });
    expect(await client.line(0)).to.include('no SNI, ALPN http/1.1;');
    client.destroy();
  });

  it('--request-client-cert: the handler sees the chain; a bad chain fails the handshake', async function () {
    const { port, stateDir } = await startCli(['--request-client-cert']);
    const anonymous = await tlsClient(port);
    expect(await anonymous.line(0)).to.not.include('client certificate');
    anonymous.destroy();

    const chain2 = { cert: fs.readFileSync(pki.clientChain2.chain), key: fs.readFileSync(pki.clientChain2.key) };
    const known = await tlsClient(port, chain2);
    expect(await known.line(0)).to.include('client certificate CN=client-chain-2, O=native-tls-listener tests');
    known.destroy();

    const expired = await tlsClient(port, { cert: fs.readFileSync(pki.expiredClient.chain), key: fs.readFileSync(pki.expiredClient.key) });
    await expired.whenClosed();
    expect(expired.received).to.equal('');
    const stats = JSON.parse(await curlLocalhost(stateDir, port, '/stats')) as ListenerStats;
    expect(stats.handshakes.failed).to.equal(1);
  });

  it('--handshake-timeout: a client that never says hello is closed', async function () {
    const { port, stateDir } = await startCli(['--handshake-timeout', '300']);
    const silent = net.connect({ host: '127.0.0.1', port });
    const started = Date.now();
    await within(new Promise((resolve) => silent.once('close', resolve)), 'the silent client to be closed');
    expect(Date.now() - started).to.be.within(200, 5000);
    const stats = JSON.parse(await curlLocalhost(stateDir, port, '/stats')) as ListenerStats;
    expect(stats.handshakes.timedOut).to.equal(1);
  });

  it('--log-tls-errors: a failed handshake is logged on stderr', async function () {
    const { cli, port } = await startCli(['--log-tls-errors']);
    const plain = net.connect({ host: '127.0.0.1', port });
    plain.on('error', () => undefined);
    plain.end('GET / HTTP/1.0\r\n\r\n');
    await waitUntil(() => /TLS setup of connection 1 from .* failed: ERR_SSL_HTTP_REQUEST/.test(cli.stderr), 'the TLS error on stderr');
  });
});

describe('CLI: --log-format json', function () {
  interface LogLine {
    time: string;
    level: string;
    event: string;
    message: string;
    [field: string]: unknown;
  }
  const parse = (stdout: string): LogLine[] =>
    stdout
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as LogLine);

  it('one JSON object per line on stdout: listening, TLS client errors, stopping, stopped with the stats; nothing on stderr', async function () {
    const stateDir = tempDir();
    const cli = spawnCli(['--port', '0', '--state-dir', stateDir, '--log-format', 'json', '--log-tls-errors']);
    await waitUntil(() => cli.stdout.includes('"event":"listening"') || cli.exit !== null, 'the listening event', PROCESS_WAIT_MS);
    const [listening] = parse(cli.stdout);
    expect(listening).to.include({ level: 'info', event: 'listening', address: '127.0.0.1', backend: nativeAvailable() ? 'native' : 'js' });
    expect(new Date(listening?.time ?? '').getTime()).to.be.closeTo(Date.now(), 60_000);
    const port = listening?.port as number;
    expect(port).to.be.a('number').above(0);
    expect(listening?.fingerprint).to.equal(await opensslFingerprint(path.join(stateDir, 'ca.pem')));
    expect(listening?.opensslCommand).to.include(`-connect 127.0.0.1:${port}`);

    const plain = net.connect({ host: '127.0.0.1', port });
    plain.on('error', () => undefined);
    plain.end('GET / HTTP/1.0\r\n\r\n');
    await waitUntil(() => cli.stdout.includes('"event":"tlsClientError"'), 'the TLS error event');
    const failed = parse(cli.stdout).find((line) => line.event === 'tlsClientError');
    expect(failed).to.include({ level: 'warn', connection: 1, remoteAddress: '127.0.0.1' });
    expect(failed?.code).to.match(/^ERR_SSL_/);

    expect((await cli.stop('SIGTERM')).code).to.equal(0);
    const lines = parse(cli.stdout);
    expect(lines.map((line) => line.event)).to.deep.equal(['listening', 'tlsClientError', 'stopping', 'stopped']);
    expect(lines[2]).to.include({ event: 'stopping', signal: 'SIGTERM' });
    expect(lines[3]).to.include({ event: 'stopped', exitCode: 0 });
    expect(lines[3]?.stats).to.deep.include({ accepted: 1, active: 0, leaked: 0 });
    expect(cli.stderr).to.equal('');
  });

  it('a start-up failure is a startFailed event, exit 1', async function () {
    const { exit, stdout, stderr } = await runCli(['--port', '0', '--state-dir', tempDir(), '--log-format', 'json', '--cert', '/nonexistent.pem', '--key', '/nonexistent.key']);
    expect(exit.code).to.equal(1);
    const [failure] = parse(stdout);
    expect(failure).to.include({ level: 'error', event: 'startFailed' });
    expect(failure?.message).to.include('/nonexistent.pem');
    expect(stderr).to.equal('');
  });
});
