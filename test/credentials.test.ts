// Loading the server credential from files (certificate, optional CA appended to the chain, key)
// and the SHA-256 fingerprint of a certificate file, checked against the openssl command.
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { CREDENTIAL_LIMITS, loadFingerprint, loadServerCredential, readServerCredential } from '../src/tls/credentials.js';
import { TLSListener } from '../src/tls/tls_listener.js';
import type { CredentialFiles } from '../src/tls/credentials.js';
import { createTestPki, writePkiFiles } from './support/pki.js';
import type { PkiFiles } from './support/pki.js';
import { BACKENDS, run, sClient, sClientCertCount, startListener, tlsConnect, useCleanup } from './support/tls_harness.js';

const pki = await createTestPki();

// Written once for the file at load time (like the PKI), removed when the process exits.
const dir = await mkdtemp(join(tmpdir(), 'ntl-credentials-'));
process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
const files: PkiFiles = await writePkiFiles(dir);
/** Files that are wrong in one way each. */
const bad = {
  notPem: join(dir, 'not-pem.txt'),
  brokenPem: join(dir, 'broken.pem'),
  // Tests run as root, for whom no permission bit makes a file unreadable; a directory is.
  directory: join(dir, 'a-directory.pem'),
  missing: join(dir, 'does-not-exist.pem'),
  keyAsCert: join(dir, 'key-as-cert.pem'),
};
await writeFile(bad.notPem, 'this is not a certificate\n');
await writeFile(bad.brokenPem, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
await mkdir(bad.directory);
await copyFile(files.server.key, bad.keyAsCert);

type Reported = Error & { code?: string; file?: string };

function failureOf(action: () => unknown): Reported {
  try {
    action();
  } catch (error) {
    return error as Reported;
  }
  throw new Error('expected it to throw');
}

function expectInvalid(action: () => unknown, file: string, says: RegExp): void {
  const error = failureOf(action);
  expect(error.code, error.message).to.equal('ERR_INVALID_CREDENTIAL');
  expect(error.message).to.include(file);
  expect(error.message).to.match(says);
  expect(error.file).to.equal(file);
}

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

describe('loadServerCredential: a certificate, its CA and its key', function () {
  const cleanup = useCleanup();

  it('returns the key and a chain of the certificate followed by the CA', function () {
    const credential = loadServerCredential({
      certificateFile: files.server.cert,
      privateKeyFile: files.server.key,
      caCertificateFile: files.ca.cert,
    });
    const chain = pemBlocks(credential.cert.toString());
    expect(chain).to.have.length(2);
    expect(new X509Certificate(chain[0] ?? '').fingerprint256).to.equal(new X509Certificate(pki.server.cert).fingerprint256);
    expect(new X509Certificate(chain[1] ?? '').fingerprint256).to.equal(new X509Certificate(pki.ca.cert).fingerprint256);
    expect(credential.key.toString()).to.equal(pki.server.key);
  });

  it('returns the certificate alone when there is no CA file', function () {
    const credential = loadServerCredential({ certificateFile: files.server.cert, privateKeyFile: files.server.key });
    expect(pemBlocks(credential.cert.toString())).to.have.length(1);
  });

  for (const backend of BACKENDS) {
    it(`serves TLS clients the whole chain (${backend} backend)`, async function () {
      const credential = loadServerCredential({
        certificateFile: files.server.cert,
        privateKeyFile: files.server.key,
        caCertificateFile: files.ca.cert,
      });
      const server = await startListener(cleanup, { backend, credential }, (socket) => {
        socket.write('HELLO\n');
      });

      // No trust store holds the test CA, so the issuer the client links is one the server sent.
      const client = tlsConnect(cleanup, server.port);
      await client.receive('HELLO\n');
      const leaf = client.socket.getPeerCertificate(true);
      expect(leaf.subject.CN).to.equal('server.test');
      expect(leaf.issuerCertificate?.subject.CN).to.equal('Test Root CA');
      expect(leaf.issuerCertificate?.fingerprint256).to.equal(new X509Certificate(pki.ca.cert).fingerprint256);

      const result = await sClient(cleanup, server.port, ['-noservername', '-showcerts'], (stdout) => stdout.includes('HELLO'));
      expect(sClientCertCount(result.stdout), result.stdout).to.equal(2);

      // And a client that trusts only the CA verifies the server.
      const verifying = tlsConnect(cleanup, server.port, { ca: pki.ca.cert, servername: 'server.test', rejectUnauthorized: true });
      await verifying.receive('HELLO\n');
      expect(verifying.socket.authorized).to.equal(true);
    });
  }
});

describe('loadServerCredential: misnamed or missing file names are ERR_INVALID_OPTION naming the key it wants', function () {
  it('{ cert, key } (the names of PEM text) names certificateFile, and says what cert is', async function () {
    for (const load of [loadServerCredential, readServerCredential]) {
      let error: (Error & { code?: string; option?: string }) | undefined;
      try {
        await load({ cert: files.server.cert, key: files.server.key } as unknown as CredentialFiles);
      } catch (caught) {
        error = caught as Error & { code?: string; option?: string };
      }
      expect(error?.code).to.equal('ERR_INVALID_OPTION');
      expect(error?.option).to.equal('certificateFile');
      expect(error?.message).to.contain('certificateFile must be a file path').and.contain("the 'cert' given");
    }
  });

  it('a privateKeyFile that is not a string, or an empty caCertificateFile, is named', function () {
    expect(() => loadServerCredential({ certificateFile: files.server.cert, privateKeyFile: 42 } as unknown as CredentialFiles))
      .to.throw('privateKeyFile must be a file path, got number').with.property('code', 'ERR_INVALID_OPTION');
    expect(() => loadServerCredential({ certificateFile: files.server.cert, privateKeyFile: files.server.key, caCertificateFile: '' }))
      .to.throw('caCertificateFile must be a file path').with.property('code', 'ERR_INVALID_OPTION');
  });
});

describe('loadServerCredential: every invalid input is ERR_INVALID_CREDENTIAL naming the file', function () {
  const base = (): CredentialFiles => ({
    certificateFile: files.server.cert,
    privateKeyFile: files.server.key,
    caCertificateFile: files.ca.cert,
  });

  for (const role of ['certificateFile', 'privateKeyFile', 'caCertificateFile'] as const) {
    it(`a missing ${role}`, function () {
      expectInvalid(() => loadServerCredential({ ...base(), [role]: bad.missing }), bad.missing, /no such file/);
    });

    it(`an unreadable ${role} (a directory)`, function () {
      expectInvalid(() => loadServerCredential({ ...base(), [role]: bad.directory }), bad.directory, /cannot read/);
    });

    it(`a ${role} that is not PEM`, function () {
      expectInvalid(() => loadServerCredential({ ...base(), [role]: bad.notPem }), bad.notPem, /not a PEM/);
    });
  }

  it('a certificate block that does not parse', function () {
    expectInvalid(() => loadServerCredential({ ...base(), certificateFile: bad.brokenPem }), bad.brokenPem, /does not parse/);
  });

  it('a CA block that does not parse', function () {
    expectInvalid(() => loadServerCredential({ ...base(), caCertificateFile: bad.brokenPem }), bad.brokenPem, /does not parse/);
  });

  it('a key file given as the certificate', function () {
    expectInvalid(() => loadServerCredential({ ...base(), certificateFile: bad.keyAsCert }), bad.keyAsCert, /not a PEM certificate/);
  });

  it('a certificate given as the key', function () {
    expectInvalid(() => loadServerCredential({ ...base(), privateKeyFile: files.ca.cert }), files.ca.cert, /not a PEM private key/);
  });

  it('a key that does not match the certificate', function () {
    const error = failureOf(() => loadServerCredential({ ...base(), privateKeyFile: files.sni.key }));
    expect(error.code).to.equal('ERR_INVALID_CREDENTIAL');
    expect(error.message).to.include(files.sni.key);
    expect(error.message).to.include(files.server.cert);
    expect(error.message).to.match(/does not match/);
  });

  it('a key of another algorithm than the certificate (RSA key, EC certificate)', function () {
    const error = failureOf(() => loadServerCredential({ ...base(), privateKeyFile: files.rsaServer.key }));
    expect(error.code).to.equal('ERR_INVALID_CREDENTIAL');
    expect(error.message).to.include(files.rsaServer.key);
  });
});

describe('TLS listener options: a credential given in memory is checked when the listener is made', function () {
  const noop = (): void => undefined;
  for (const which of ['credential', 'sniCredential'] as const) {
    it(`rejects a ${which} whose key does not match its certificate, naming the option`, function () {
      const good = { key: pki.server.key, cert: pki.server.cert };
      const mismatched = { key: pki.sni.key, cert: pki.server.cert };
      const options = which === 'credential' ? { port: 0, credential: mismatched } : { port: 0, credential: good, sniCredential: mismatched };
      const error = failureOf(() => new TLSListener(options, noop));
      expect(error.code, error.message).to.equal('ERR_INVALID_CREDENTIAL');
      expect(error.message).to.include(which);
    });

    it(`rejects a ${which} without a key`, function () {
      const keyless = { cert: pki.server.cert } as unknown as { key: string; cert: string };
      const options = which === 'credential' ? { port: 0, credential: keyless } : { port: 0, credential: pki.server, sniCredential: keyless };
      const error = failureOf(() => new TLSListener(options, noop));
      expect(error.code, error.message).to.equal('ERR_INVALID_CREDENTIAL');
      expect(error.message).to.include(which);
    });
  }
});

/** `openssl x509 -noout -fingerprint -sha256` as bytes. */
function opensslFingerprint(file: string): Buffer {
  const out = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', file], { encoding: 'utf8' });
  const hex = /Fingerprint=([0-9A-F:]+)/i.exec(out)?.[1];
  if (hex === undefined) throw new Error(`no fingerprint in ${JSON.stringify(out)}`);
  return Buffer.from(hex.replaceAll(':', ''), 'hex');
}

describe('loadFingerprint: SHA-256 of the first certificate in the file', function () {
  const cleanup = useCleanup();

  for (const name of ['ca', 'server', 'rsaServer'] as const) {
    it(`matches openssl x509 -fingerprint -sha256 for ${name}`, function () {
      const fingerprint = loadFingerprint(files[name].cert);
      expect(fingerprint).to.have.length(32);
      expect(fingerprint.toString('hex')).to.equal(opensslFingerprint(files[name].cert).toString('hex'));
    });
  }

  it('uses the first certificate of a file holding a chain, as openssl does', async function () {
    const chainFile = files.clientChain3.chain;
    const fingerprint = loadFingerprint(chainFile);
    expect(fingerprint.toString('hex')).to.equal(opensslFingerprint(chainFile).toString('hex'));
    // and the command agrees that this is the leaf's
    const leafOnly = await run(cleanup, 'openssl', ['x509', '-noout', '-subject', '-in', chainFile], { closeStdin: true });
    expect(leafOnly.stdout).to.include('client-chain-3');
  });

  it('rejects a missing file, a directory and a file that is not PEM', function () {
    expectInvalid(() => loadFingerprint(bad.missing), bad.missing, /no such file/);
    expectInvalid(() => loadFingerprint(bad.directory), bad.directory, /cannot read/);
    expectInvalid(() => loadFingerprint(bad.notPem), bad.notPem, /not a PEM/);
  });
});

describe('credential limits: a huge file or a long chain is ERR_CREDENTIAL_TOO_LARGE, refused before it is parsed', function () {
  const serverCert = (): string => pki.server.cert.trimEnd() + '\n';
  const huge = join(dir, 'huge-chain.pem');
  const long = join(dir, 'long-chain.pem');
  const atLimit = join(dir, 'chain-at-limit.pem');
  before(async function () {
    // As in the report: the certificate repeated past a megabyte (its key still matches).
    await writeFile(huge, serverCert().repeat(Math.ceil((CREDENTIAL_LIMITS.maxFileBytes + 1) / serverCert().length)));
    await writeFile(long, serverCert().repeat(CREDENTIAL_LIMITS.maxChainCertificates + 1));
  });

  function expectTooLarge(error: Reported, names: string, says: RegExp): void {
    expect(error.code, error.message).to.equal('ERR_CREDENTIAL_TOO_LARGE');
    expect(error.message).to.include(names);
    expect(error.message).to.match(says);
  }

  it('a certificate file over maxFileBytes, by loadServerCredential, readServerCredential and the fingerprint', async function () {
    const over = /over the limit of 1048576/;
    expectTooLarge(failureOf(() => loadServerCredential({ certificateFile: huge, privateKeyFile: files.server.key })), huge, over);
    expectTooLarge(await readServerCredential({ certificateFile: huge, privateKeyFile: files.server.key }).then(() => new Error('resolved'), (error: Reported) => error), huge, over);
    expectTooLarge(failureOf(() => loadFingerprint(huge)), huge, over);
    expectTooLarge(failureOf(() => loadServerCredential({ certificateFile: files.server.cert, privateKeyFile: files.server.key, caCertificateFile: huge })), huge, over);
  });

  it('a chain of more than maxChainCertificates, counting the CA file', function () {
    const count = CREDENTIAL_LIMITS.maxChainCertificates + 1;
    expectTooLarge(failureOf(() => loadServerCredential({ certificateFile: long, privateKeyFile: files.server.key })), long, new RegExp(`a chain of ${count} certificates`));
    const fits = serverCert().repeat(CREDENTIAL_LIMITS.maxChainCertificates);
    writeFileSync(atLimit, fits);
    expect(pemBlocks(String(loadServerCredential({ certificateFile: atLimit, privateKeyFile: files.server.key }).cert))).to.have.length(CREDENTIAL_LIMITS.maxChainCertificates);
    const withCa = { certificateFile: atLimit, privateKeyFile: files.server.key, caCertificateFile: files.ca.cert };
    expectTooLarge(failureOf(() => loadServerCredential(withCa)), `${atLimit} with ${files.ca.cert}`, new RegExp(`a chain of ${count} certificates`));
    expectTooLarge(
      failureOf(() => new TLSListener({ port: 0, credential: { cert: fits + serverCert(), key: pki.server.key } }, () => undefined)),
      'credential',
      new RegExp(`a chain of ${count} certificates`),
    );
  });

  it('a file with no size yet (a pipe) is read whole, and refused past maxFileBytes, by both reads', async function () {
    // fstat says 0 for a FIFO: the read starts at that size and grows, up to the limit and one byte past it.
    const fifo = join(dir, 'credential.fifo');
    rmSync(fifo, { force: true });
    execFileSync('mkfifo', [fifo]);
    // A writer in another process; the promise is its exit, listened for from the start.
    const writeInto = (source: string): Promise<unknown> =>
      new Promise((resolve) => spawn('sh', ['-c', 'cat "$1" > "$2" 2>/dev/null || true', 'sh', source, fifo], { stdio: 'ignore' }).once('exit', resolve));

    // Expected values first: a synchronous child (openssl) while a writer runs would take its exit.
    const fingerprint = opensslFingerprint(files.server.cert).toString('hex');
    const chain = String(loadServerCredential({ certificateFile: files.server.cert, privateKeyFile: files.server.key }).cert);

    let writer = writeInto(files.server.cert);
    expect(loadFingerprint(fifo).toString('hex')).to.equal(fingerprint);
    await writer;
    writer = writeInto(files.server.cert);
    const read = await readServerCredential({ certificateFile: fifo, privateKeyFile: files.server.key });
    expect(String(read.cert)).to.equal(chain);
    await writer;

    writer = writeInto(huge);
    expectTooLarge(failureOf(() => loadFingerprint(fifo)), fifo, /1048577 bytes or more, over the limit of 1048576/);
    await writer;
    writer = writeInto(huge);
    expectTooLarge(await readServerCredential({ certificateFile: fifo, privateKeyFile: files.server.key }).then(() => new Error('resolved'), (error: Reported) => error), fifo, /over the limit of 1048576/);
    await writer;
  });

  it('readServerCredential gives what loadServerCredential gives', async function () {
    const given: CredentialFiles = { certificateFile: files.server.cert, privateKeyFile: files.server.key, caCertificateFile: files.ca.cert };
    expect(await readServerCredential(given)).to.deep.equal(loadServerCredential(given));
  });
});
