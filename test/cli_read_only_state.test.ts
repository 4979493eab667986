// The CLI with --state-dir on a read-only file system: existing credentials are served without
// a write. The state directory is bind-mounted read-only in a private mount namespace
// (unshare -m): the tests run as root, whom permission bits would not stop.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { ensureDefaultPki } from '../src/cli/default_pki.js';
import { issueServerCertificate } from '../src/cli/certificates.js';
import { spawnCliProcess, stateDirFor } from './support/cli_process.js';
import { tlsConnect, useCleanup } from './support/tls_harness.js';
import type { Cleanup } from './support/tls_harness.js';

/** Runs the command after "$@" with `dir` mounted read-only for it alone. */
const READ_ONLY = ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'];

function canMountReadOnly(dir: string): boolean {
  try {
    execFileSync(READ_ONLY[0] ?? 'unshare', [...READ_ONLY.slice(1), dir, 'true'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** Every file's name, size and modification time: what a write would change. */
function snapshot(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .sort()
    .map((name) => {
      const stat = fs.statSync(path.join(dir, name));
      return `${name} ${stat.size} ${stat.mtimeMs}`;
    });
}

async function createdStateDir(cleanup: Cleanup): Promise<string> {
  const dir = path.join(stateDirFor(cleanup), 'state');
  await ensureDefaultPki(dir);
  return dir;
}

describe('CLI: --state-dir on a read-only file system', function () {
  this.timeout(30_000);
  const cleanup = useCleanup();

  before(function () {
    const probe = stateDirFor(cleanup);
    if (!canMountReadOnly(probe)) this.skip();
  });

  it('serves the existing credentials and writes nothing', async function () {
    const dir = await createdStateDir(cleanup);
    const before = snapshot(dir);
    const cli = spawnCliProcess(cleanup, ['--port', '0', '--state-dir', dir], { under: [...READ_ONLY, dir] });
    const port = await cli.started();
    const client = tlsConnect(cleanup, port, { ca: fs.readFileSync(path.join(dir, 'ca.pem')), rejectUnauthorized: true, servername: 'localhost' });
    await client.whenSecure();
    expect((await cli.stop()).code).to.equal(0);
    expect(snapshot(dir)).to.deep.equal(before);
  });

  it('serves a certificate due for renewal as it is, with a note, when it cannot write the new one', async function () {
    const dir = await createdStateDir(cleanup);
    // A server certificate by the same CA that expires within the renewal window.
    const ca = { cert: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8'), key: fs.readFileSync(path.join(dir, 'ca.key'), 'utf8') };
    const expiring = await issueServerCertificate(ca, { commonName: 'expiring', dnsNames: [], ipAddresses: ['127.0.0.1'], validityDays: 10 });
    fs.writeFileSync(path.join(dir, 'server.key'), expiring.key);
    fs.writeFileSync(path.join(dir, 'server.pem'), expiring.cert);
    const before = snapshot(dir);

    const cli = spawnCliProcess(cleanup, ['--port', '0', '--state-dir', dir], { under: [...READ_ONLY, dir] });
    const port = await cli.started();
    expect(cli.stdout).to.match(/^server\.pem is due for renewal but the state directory cannot be written \(EROFS\); serving it until it expires$/m);
    const client = tlsConnect(cleanup, port);
    await client.whenSecure();
    expect(client.serverCommonName()).to.equal('expiring');
    expect(new X509Certificate(expiring.cert).validTo).to.equal(new X509Certificate(fs.readFileSync(path.join(dir, 'server.pem'))).validTo);
    expect((await cli.stop()).code).to.equal(0);
    expect(snapshot(dir)).to.deep.equal(before);
  });

  it('fails to start, saying why, when a certificate it must create cannot be written', async function () {
    const dir = await createdStateDir(cleanup);
    fs.rmSync(path.join(dir, 'sni.pem'));
    const cli = spawnCliProcess(cleanup, ['--port', '0', '--state-dir', dir], { under: [...READ_ONLY, dir] });
    const exit = await cli.exited;
    expect(exit.code, cli.describe()).to.equal(1);
    expect(cli.stderr).to.match(new RegExp(`cannot keep the default certificates in ${dir}: EROFS`));
  });
});
