// The CLI run as an unprivileged service user whose state directory it owns inside a parent it
// cannot write: systemd's StateDirectory= layout (/var/lib root-owned 0755, /var/lib/NAME owned
// by the service user). The tests run as root, so the CLI is started under setpriv as nobody.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { spawnCliProcess, stateDirFor } from './support/cli_process.js';
import { tlsConnect, useCleanup } from './support/tls_harness.js';

const AS_NOBODY = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'];

function nobodyIds(): { uid: number; gid: number } | undefined {
  try {
    const [uid, gid] = ['-u', '-g'].map((flag) => Number(execFileSync('id', [flag, 'nobody'], { encoding: 'utf8' }).trim()));
    return uid === undefined || gid === undefined ? undefined : { uid, gid };
  } catch {
    return undefined;
  }
}

describe('CLI: a state directory the service user owns in a parent it cannot write', function () {
  this.timeout(30_000);
  const cleanup = useCleanup();

  it('creates the default PKI inside it and serves', async function () {
    const ids = nobodyIds();
    if (process.getuid?.() !== 0 || ids === undefined) this.skip();
    const parent = stateDirFor(cleanup);
    fs.chmodSync(parent, 0o755);
    const dir = path.join(parent, 'state');
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chownSync(dir, ids.uid, ids.gid);

    const cli = spawnCliProcess(cleanup, ['--port', '0', '--state-dir', dir], { under: AS_NOBODY });
    const port = await cli.started();
    expect(cli.stdout).to.include('a new CA was created');
    const client = tlsConnect(cleanup, port, { ca: fs.readFileSync(path.join(dir, 'ca.pem')), rejectUnauthorized: true, servername: 'localhost' });
    await client.whenSecure();
    expect((await cli.stop()).code).to.equal(0);
    expect(fs.readdirSync(parent)).to.deep.equal(['state']);
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['ca.key', 'ca.pem', 'server.key', 'server.pem', 'sni.key', 'sni.pem']);
    expect(fs.statSync(path.join(dir, 'ca.key')).uid).to.equal(ids.uid);
  });
});
