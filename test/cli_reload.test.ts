// The CLI loads its certificate files again without a restart: on SIGHUP, and with --watch when
// the files change. Real TLS clients check which certificate is served after each reload.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { createTestPki } from './support/pki.js';
import type { CertAndKey } from './support/pki.js';
import { spawnCliProcess } from './support/cli_process.js';
import type { CliProcess } from './support/cli_process.js';
import { BACKENDS, tlsConnect, useCleanup } from './support/tls_harness.js';
import type { Cleanup } from './support/tls_harness.js';

const pki = await createTestPki();

interface Served {
  dir: string;
  cert: string;
  key: string;
}

async function servedFiles(cleanup: Cleanup, pair: CertAndKey): Promise<Served> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ntl-reload-'));
  cleanup.add(() => fs.rm(dir, { recursive: true, force: true }));
  const files = { dir, cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key') };
  await fs.writeFile(files.cert, pair.cert);
  await fs.writeFile(files.key, pair.key);
  return files;
}

/** Replaces a file the way deployment tools do: a temporary file renamed over it. */
async function replaceFile(file: string, text: string): Promise<void> {
  await fs.writeFile(`${file}.tmp`, text);
  await fs.rename(`${file}.tmp`, file);
}

async function servedCommonName(cleanup: Cleanup, port: number): Promise<string | undefined> {
  const client = tlsConnect(cleanup, port);
  await client.whenSecure();
  const name = client.serverCommonName();
  client.socket.destroy();
  return name;
}

function fingerprintLines(cli: CliProcess): string[] {
  return cli.stdout.split('\n').filter((line) => line.startsWith('certificate fingerprint (SHA-256): '));
}

function fingerprintOf(pair: CertAndKey): string {
  return new X509Certificate(pair.cert).fingerprint256;
}

for (const backend of BACKENDS) {
  describe(`CLI: SIGHUP reloads the certificate files (${backend} backend)`, function () {
    this.timeout(30_000);
    const cleanup = useCleanup();

    it('serves the new certificate after SIGHUP and prints its fingerprint line again', async function () {
      const files = await servedFiles(cleanup, pki.server);
      const cli = spawnCliProcess(cleanup, ['--port', '0', '--backend', backend, '--cert', files.cert, '--key', files.key]);
      const port = await cli.started();
      expect(await servedCommonName(cleanup, port)).to.equal('server.test');

      await replaceFile(files.key, pki.rsaServer.key);
      await replaceFile(files.cert, pki.rsaServer.cert);
      cli.child.kill('SIGHUP');
      await cli.logged(/^native-tls-listener: certificates reloaded \(SIGHUP\)$/);
      expect(await servedCommonName(cleanup, port)).to.equal('rsa.server.test');
      expect(fingerprintLines(cli)).to.deep.equal([
        `certificate fingerprint (SHA-256): ${fingerprintOf(pki.server)}`,
        `certificate fingerprint (SHA-256): ${fingerprintOf(pki.rsaServer)}`,
      ]);
      expect((await cli.stop()).code).to.equal(0);
    });

    it('keeps the old certificate, with one log line saying why, when the new files do not load', async function () {
      const files = await servedFiles(cleanup, pki.server);
      const cli = spawnCliProcess(cleanup, ['--port', '0', '--backend', backend, '--cert', files.cert, '--key', files.key]);
      const port = await cli.started();
      // A certificate whose key has not been written yet: they do not match.
      await replaceFile(files.cert, pki.rsaServer.cert);
      cli.child.kill('SIGHUP');
      await cli.logged(/^native-tls-listener: certificate reload \(SIGHUP\) failed, still serving the previous certificates: .*server\.key: the key does not match the certificate/);
      await replaceFile(files.cert, 'half a cert\n-----BEGIN CERTIFICATE-----\nMIIB\n');
      cli.child.kill('SIGHUP');
      await cli.logged(/^native-tls-listener: certificate reload \(SIGHUP\) failed, still serving the previous certificates: .*server\.pem: not a PEM certificate file/);
      // A chain far over the limits (the certificate repeated to 10 MB, its key matching).
      await replaceFile(files.key, pki.server.key);
      await replaceFile(files.cert, `${pki.server.cert.trimEnd()}\n`.repeat(13_000));
      cli.child.kill('SIGHUP');
      await cli.logged(/^native-tls-listener: certificate reload \(SIGHUP\) failed, still serving the previous certificates: .*server\.pem: \d+ bytes or more, over the limit of 1048576/);
      expect(await servedCommonName(cleanup, port)).to.equal('server.test');
      await replaceFile(files.cert, `${pki.server.cert.trimEnd()}\n`.repeat(17));
      cli.child.kill('SIGHUP');
      await cli.logged(/^native-tls-listener: certificate reload \(SIGHUP\) failed, still serving the previous certificates: .*server\.pem: a chain of 17 certificates, over the limit of 16/);
      expect(cli.stderr.match(/certificate reload/g)).to.have.length(4);
      expect(await servedCommonName(cleanup, port)).to.equal('server.test');
      expect(fingerprintLines(cli)).to.have.length(1);
      expect((await cli.stop()).code).to.equal(0);
    });
  });
}

describe('CLI: --watch reloads the certificate files when they change', function () {
  this.timeout(30_000);
  const cleanup = useCleanup();

  it('rejects the half-written state, then serves the new certificate once both files are in place', async function () {
    const files = await servedFiles(cleanup, pki.server);
    const cli = spawnCliProcess(cleanup, ['--port', '0', '--watch', '--cert', files.cert, '--key', files.key]);
    const port = await cli.started();

    // The certificate alone first: the key on disk is still the old one.
    await replaceFile(files.cert, pki.rsaServer.cert);
    await cli.logged(/^native-tls-listener: certificate reload \(the certificate files changed\) failed, still serving the previous certificates: /);
    expect(await servedCommonName(cleanup, port)).to.equal('server.test');

    await replaceFile(files.key, pki.rsaServer.key);
    await cli.logged(/^native-tls-listener: certificates reloaded \(the certificate files changed\)$/);
    expect(await servedCommonName(cleanup, port)).to.equal('rsa.server.test');
    expect(fingerprintLines(cli).at(-1)).to.equal(`certificate fingerprint (SHA-256): ${fingerprintOf(pki.rsaServer)}`);
    expect((await cli.stop()).code).to.equal(0);
  });

  it("follows a Kubernetes Secret volume: the new certificates once ..data is swapped to a new directory", async function () {
    // The layout the kubelet writes: the files in a timestamped directory, ..data pointing at
    // it, each file name a symlink through ..data; a renewal renames a new ..data over it.
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ntl-secret-'));
    cleanup.add(() => fs.rm(dir, { recursive: true, force: true }));
    async function version(name: string, pair: CertAndKey): Promise<void> {
      await fs.mkdir(path.join(dir, name));
      await fs.writeFile(path.join(dir, name, 'tls.crt'), pair.cert);
      await fs.writeFile(path.join(dir, name, 'tls.key'), pair.key);
    }
    await version('..2026_01_01_00_00_00.1', pki.server);
    await fs.symlink('..2026_01_01_00_00_00.1', path.join(dir, '..data'));
    for (const name of ['tls.crt', 'tls.key']) await fs.symlink(path.join('..data', name), path.join(dir, name));
    const cli = spawnCliProcess(cleanup, ['--port', '0', '--watch', '--cert', path.join(dir, 'tls.crt'), '--key', path.join(dir, 'tls.key')]);
    const port = await cli.started();
    expect(await servedCommonName(cleanup, port)).to.equal('server.test');

    await version('..2026_02_01_00_00_00.2', pki.rsaServer);
    await fs.symlink('..2026_02_01_00_00_00.2', path.join(dir, '..data_tmp'));
    await fs.rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
    await fs.rm(path.join(dir, '..2026_01_01_00_00_00.1'), { recursive: true });
    await cli.logged(/^native-tls-listener: certificates reloaded \(the certificate files changed\)$/);
    expect(await servedCommonName(cleanup, port)).to.equal('rsa.server.test');
    expect((await cli.stop()).code).to.equal(0);
  });

  it('does not watch without --watch: a change alone reloads nothing', async function () {
    const files = await servedFiles(cleanup, pki.server);
    const cli = spawnCliProcess(cleanup, ['--port', '0', '--cert', files.cert, '--key', files.key]);
    const port = await cli.started();
    await replaceFile(files.key, pki.rsaServer.key);
    await replaceFile(files.cert, pki.rsaServer.cert);
    // Well past the debounce: nothing happens without a SIGHUP.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(cli.stderr).to.not.match(/certificates? reload/);
    expect(await servedCommonName(cleanup, port)).to.equal('server.test');
  });
});
