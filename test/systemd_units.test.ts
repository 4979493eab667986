// The README's systemd unit pair, as printed: `systemd-analyze verify` takes both without a
// word, and the service's ExecStart, started by the real systemd-socket-activate with the
// socket unit's FileDescriptorName=, serves the socket passed in and stops cleanly on SIGTERM.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { CLI_PATH, spawnCliProcess } from './support/cli_process.js';
import { repoRoot } from './support/paths.js';
import { writePkiFiles } from './support/pki.js';
import { closeServer, listeningServer } from './support/sockets.js';
import { tlsConnect, useCleanup, waitUntil } from './support/tls_harness.js';

const execFileAsync = promisify(execFile);
const INSTALLED_BIN = '/usr/local/bin/native-tls-listener';

/** The README's ```ini blocks that start with `# NAME.socket` or `# NAME.service`, by file name. */
function readmeUnits(): Map<string, string> {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const units = new Map<string, string>();
  for (const match of readme.matchAll(/^```ini\n# (\S+\.(?:socket|service))\n([\s\S]*?)^```$/gm)) {
    if (match[1] !== undefined && match[2] !== undefined) units.set(match[1], match[2]);
  }
  return units;
}

/** The value of `key=` in a unit's text. */
function setting(unit: string, key: string): string {
  const value = new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1];
  if (value === undefined) throw new Error(`no ${key}= in:\n${unit}`);
  return value;
}

describe("systemd: the README's .socket and .service units", function () {
  const cleanup = useCleanup();
  const units = readmeUnits();
  const socketUnit = units.get('native-tls-listener.socket') ?? '';
  const serviceUnit = units.get('native-tls-listener.service') ?? '';
  let dir: string;

  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-units-'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('are in the README, a Type=notify service on a socket with a FileDescriptorName= that --socket-name names', function () {
    expect([...units.keys()]).to.deep.equal(['native-tls-listener.socket', 'native-tls-listener.service']);
    expect(setting(serviceUnit, 'Type')).to.equal('notify');
    expect(setting(serviceUnit, 'ExecStart')).to.include(`--socket-name ${setting(socketUnit, 'FileDescriptorName')}`);
  });

  it('systemd-analyze verify accepts both without a warning', async function () {
    this.timeout(20_000);
    // verify checks that ExecStart is executable: the CLI stands in for its installed bin.
    const bin = path.join(dir, 'native-tls-listener');
    fs.writeFileSync(bin, `#!/bin/sh\nexec ${process.execPath} ${CLI_PATH} "$@"\n`, { mode: 0o755 });
    for (const [name, text] of units) fs.writeFileSync(path.join(dir, name), text.replaceAll(INSTALLED_BIN, bin));
    const { stdout, stderr } = await execFileAsync('systemd-analyze', ['verify', '--man=no', ...[...units.keys()].map((name) => path.join(dir, name))], { timeout: 15_000 });
    expect(stderr).to.equal('');
    expect(stdout).to.equal('');
  });

  it("its ExecStart, given the socket by systemd-socket-activate under the socket unit's name, serves it", async function () {
    this.timeout(30_000);
    const pki = await writePkiFiles(path.join(dir, 'pki'));
    const [bin, ...args] = setting(serviceUnit, 'ExecStart').split(' ');
    expect(bin).to.equal(INSTALLED_BIN);
    // The unit's paths, on this machine.
    const local: Record<string, string> = {
      '/etc/native-tls-listener/server.pem': pki.server.cert,
      '/etc/native-tls-listener/server.key': pki.server.key,
      '/run/native-tls-listener/control.sock': path.join(dir, 'control.sock'),
    };
    const cliArgs = args.map((arg) => local[arg] ?? arg);
    expect(cliArgs.filter((arg) => arg.startsWith('/etc/') || arg.startsWith('/run/')), 'every path mapped').to.deep.equal([]);
    const { server, port } = await listeningServer();
    await closeServer(server);
    const fdname = setting(socketUnit, 'FileDescriptorName');
    const cli = spawnCliProcess(cleanup, cliArgs, { under: ['systemd-socket-activate', '--listen', `127.0.0.1:${port}`, `--fdname=${fdname}`] });
    await waitUntil(() => cli.stderr.includes(`Listening on 127.0.0.1:${port}`) || cli.exit !== null, 'systemd-socket-activate to listen', 10_000);
    expect(cli.exit, cli.describe()).to.equal(null);
    const client = tlsConnect(cleanup, port);
    await client.receive('native-tls-listener: connection 1');
    client.socket.destroy();
    expect((await cli.stop()).code, cli.describe()).to.equal(0);
  });
});
