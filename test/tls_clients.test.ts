// The TLS listener driven by programs that are not Node: `openssl s_client` (SNI, ALPN, client
// certificate chains) and `curl` (the HTTP route for connections that used the SNI credential),
// on both accept backends.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import tls from 'node:tls';
import { expect } from 'chai';
import { createTestPki, writePkiFiles } from './support/pki.js';
import type { ChainFiles, PkiFiles } from './support/pki.js';
import {
  BACKENDS,
  delay,
  expectBalanced,
  greet,
  run,
  sClient,
  sClientAlpn,
  sClientSubject,
  startListener,
  tlsConnect,
  useCleanup,
  waitUntil,
} from './support/tls_harness.js';
import type { ProcessResult, ReportedError } from './support/tls_harness.js';
import type { ConnectionHandler } from '../src/tls/tls_listener.js';

const pki = await createTestPki();
const primary = { key: pki.server.key, cert: pki.server.cert };
const sniCredential = { key: pki.sni.key, cert: pki.sni.cert };

const MARKER = 'HELLO-FROM-HANDLER';
const greetMarker = greet(`${MARKER}\n`);

const sawMarker = (stdout: string): boolean => stdout.includes(MARKER);

const PATHS = [
  { label: 'without alpn', alpn: undefined },
  { label: 'with alpn', alpn: ['x-test'] },
] as const;

function alpnOption(alpn: readonly string[] | undefined): { alpn?: string[] } {
  return alpn === undefined ? {} : { alpn: [...alpn] };
}

function commonNameOf(subjectLine: string | undefined): string | undefined {
  return subjectLine === undefined ? undefined : /CN ?= ?([^,/\n]+)/.exec(subjectLine)?.[1]?.trim();
}

function describeRun(result: ProcessResult): string {
  return `exit ${String(result.code)}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
}

/** PEM blocks of a chain file, for handing s_client the leaf and the rest separately. */
async function splitChain(files: ChainFiles, dir: string, stem: string): Promise<{ leaf: string; rest?: string; key: string }> {
  const blocks = (await readFile(files.chain, 'utf8')).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  const [leafPem, ...restPems] = blocks;
  if (leafPem === undefined) throw new Error(`${files.chain} holds no certificate`);
  const leaf = join(dir, `${stem}-leaf.pem`);
  await writeFile(leaf, leafPem);
  if (restPems.length === 0) return { leaf, key: files.key };
  const rest = join(dir, `${stem}-rest.pem`);
  await writeFile(rest, restPems.join(''));
  return { leaf, rest, key: files.key };
}

describe('openssl s_client: the certificate it sees depends on -servername', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    for (const path of PATHS) {
      describe(`${backend} backend, ${path.label}`, function () {
        it('sees the primary certificate with -noservername', async function () {
          const server = await startListener(cleanup, { backend, credential: primary, sniCredential, ...alpnOption(path.alpn) }, greetMarker);
          const result = await sClient(cleanup, server.port, ['-noservername'], sawMarker);
          expect(result.stdout, describeRun(result)).to.include(MARKER);
          expect(commonNameOf(sClientSubject(result.stdout))).to.equal('server.test');
          const info = await server.servedCount(1);
          expect(info.sniCredentialUsed).to.equal(false);
          expect(info.servername).to.equal(undefined);
        });

        it('sees the SNI certificate with -servername', async function () {
          const server = await startListener(cleanup, { backend, credential: primary, sniCredential, ...alpnOption(path.alpn) }, greetMarker);
          const result = await sClient(cleanup, server.port, ['-servername', 'sni.test'], sawMarker);
          expect(result.stdout, describeRun(result)).to.include(MARKER);
          expect(commonNameOf(sClientSubject(result.stdout))).to.equal('sni.test');
          const info = await server.servedCount(1);
          expect(info.sniCredentialUsed).to.equal(true);
          expect(info.servername).to.equal('sni.test');
        });

        it('sees the primary certificate with -servername when there is no SNI credential', async function () {
          const server = await startListener(cleanup, { backend, credential: primary, ...alpnOption(path.alpn) }, greetMarker);
          const result = await sClient(cleanup, server.port, ['-servername', 'sni.test'], sawMarker);
          expect(result.stdout, describeRun(result)).to.include(MARKER);
          expect(commonNameOf(sClientSubject(result.stdout))).to.equal('server.test');
          expect((await server.servedCount(1)).sniCredentialUsed).to.equal(false);
        });
      });
    }
  }
});

describe('openssl s_client: -alpn gets its own first choice', function () {
  const cleanup = useCleanup();
  const alpnHandler: ConnectionHandler = (socket, info) => {
    socket.write(`${MARKER} alpn=${String(info.alpnProtocol)}\n`);
  };
  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      const cases = [
        { name: 'picks the client preference', args: ['-alpn', 'b,a'], expected: 'b' },
        { name: 'negotiates nothing, and still connects, when the lists do not overlap', args: ['-alpn', 'c'], expected: false },
        { name: 'negotiates nothing without -alpn', args: [], expected: false },
      ] as const;
      for (const c of cases) {
        it(c.name, async function () {
          const server = await startListener(cleanup, { backend, credential: primary, alpn: ['a', 'b'] }, alpnHandler);
          const result = await sClient(cleanup, server.port, ['-noservername', ...c.args], sawMarker);
          expect(result.stdout, describeRun(result)).to.include(`${MARKER} alpn=${String(c.expected)}`);
          expect(sClientAlpn(result.stdout), describeRun(result)).to.equal(c.expected);
          expect((await server.servedCount(1)).alpnProtocol).to.equal(c.expected);
        });
      }
    });
  }
});

describe('openssl s_client: client certificate chains from -cert, -key and -cert_chain', function () {
  const cleanup = useCleanup();
  let dir = '';
  let files: PkiFiles;
  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'ntl-sclient-'));
    files = await writePkiFiles(dir);
  });
  after(async function () {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  async function certArgs(chain: ChainFiles, stem: string): Promise<string[]> {
    const { leaf, rest, key } = await splitChain(chain, dir, stem);
    return ['-cert', leaf, '-key', key, ...(rest !== undefined ? ['-cert_chain', rest] : [])];
  }

  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      it('accepts a client that sends no certificate', async function () {
        const server = await startListener(cleanup, { backend, credential: primary, requestClientCert: true }, greetMarker);
        const result = await sClient(cleanup, server.port, ['-noservername'], sawMarker);
        expect(result.stdout, describeRun(result)).to.include(MARKER);
        expect((await server.servedCount(1)).peerCertificateChain).to.deep.equal([]);
      });

      const accepted = [
        ['a self-signed certificate', 'clientChain1', 'client-chain-1', 1],
        ['[leaf, ca]', 'clientChain2', 'client-chain-2', 2],
        ['[leaf, id, ca]', 'clientChain3', 'client-chain-3', 3],
        ['[leaf, id, net, ca]', 'clientChain4', 'client-chain-4', 4],
      ] as const;
      for (const [shape, name, leafName, length] of accepted) {
        it(`accepts ${shape} and hands the handler all ${length}`, async function () {
          const server = await startListener(cleanup, { backend, credential: primary, requestClientCert: true }, greetMarker);
          const result = await sClient(cleanup, server.port, ['-noservername', ...(await certArgs(files[name], name))], sawMarker);
          expect(result.stdout, describeRun(result)).to.include(MARKER);
          const info = await server.servedCount(1);
          expect(info.peerCertificateChain).to.have.length(length);
          expect(info.peerCertificateChain.map((cert) => cert.fingerprint256)).to.deep.equal(
            pki[name].certs.map((pem) => new X509Certificate(pem).fingerprint256),
          );
          expect(info.peerCertificateChain[0]?.subject).to.include(`CN=${leafName}`);
        });
      }

      const rejected = [
        ['a chain of five', 'clientChain5', 'chain_too_long'],
        ['an expired leaf', 'expiredClient', 'expired'],
        ['a leaf that is not yet valid', 'notYetValidClient', 'expired'],
        ['a leaf not signed by the CA it names', 'unknownCaClient', 'unknown_ca'],
      ] as const;
      for (const [what, name, reason] of rejected) {
        it(`rejects ${what} (${reason}): s_client sees the connection closed, no data`, async function () {
          const server = await startListener(cleanup, { backend, credential: primary, requestClientCert: true }, greetMarker);
          // s_client ends by itself when the server closes; it is only killed if that never happens.
          const result = await sClient(cleanup, server.port, ['-noservername', ...(await certArgs(files[name], name))], sawMarker);
          expect(result.stdout, describeRun(result)).to.not.include(MARKER);
          const { error } = await server.nextClientError();
          expect(error.code).to.equal('ERR_CLIENT_CERT_REJECTED');
          expect(error.reason, error.message).to.equal(reason);
          expect(server.served).to.deep.equal([]);
        });
      }
    });
  }
});

/** Handshakes s_client saw the server finish (the first one and every renegotiation), from -msg. */
function serverFinishedCount(stdout: string): number {
  return stdout.match(/^<<< TLS 1\.2, Handshake \[length [0-9a-f]+\], Finished$/gm)?.length ?? 0;
}

describe('openssl s_client -tls1_2: client-initiated renegotiation is refused or cut off', function () {
  const cleanup = useCleanup();
  /** More than Node's limit, so a listener that does not enforce it lets every one through. */
  const ATTEMPTS = tls.CLIENT_RENEG_LIMIT + 5;
  const credentials = [
    // The package's own contexts refuse renegotiation outright (SSL_OP_NO_RENEGOTIATION).
    {
      label: 'key and cert (the package builds the context)',
      credential: () => primary,
      outcome: 'refuses the first renegotiation and ends the connection',
      maxHandshakes: 1,
      code: /^ERR_SSL_/,
    },
    // A caller's context allows it (Node turns OpenSSL 3's refusal off); Node's limit then applies.
    {
      label: 'a caller-built SecureContext',
      credential: () => tls.createSecureContext(primary),
      outcome: `ends the connection after Node's limit of ${tls.CLIENT_RENEG_LIMIT} renegotiations`,
      maxHandshakes: 1 + tls.CLIENT_RENEG_LIMIT,
      code: /^ERR_TLS_SESSION_ATTACK$/,
    },
  ] as const;
  for (const backend of BACKENDS) {
    for (const c of credentials) {
      describe(`${backend} backend, ${c.label}`, function () {
        it(`${c.outcome}; the handler's socket sees the error`, async function () {
          const seen: { errors: ReportedError[]; closed: boolean } = { errors: [], closed: false };
          const server = await startListener(cleanup, { backend, credential: c.credential() }, (socket) => {
            socket.on('error', (error: ReportedError) => seen.errors.push(error));
            socket.on('close', () => {
              seen.closed = true;
            });
            socket.write(`${MARKER}\n`);
          });
          let stdin: Writable | undefined;
          let exited = false;
          // Interactive (no -quiet, no -ign_eof): s_client reads `R` at the start of a line as
          // "renegotiate". -msg shows each handshake the server finishes.
          const finished = sClient(cleanup, server.port, ['-tls1_2', '-noservername', '-msg'], () => false, {
            typeInto: (input) => {
              stdin = input;
            },
          }).finally(() => {
            exited = true;
          });
          await server.servedCount(1);
          let typed = 0;
          for (; typed < ATTEMPTS && !exited; typed++) {
            stdin?.write('R\n');
            // One renegotiation at a time: s_client only looks at the first byte of each read.
            await delay(250);
          }
          const exitedBeforeStdinClosed = exited;
          stdin?.end();
          const result = await finished;
          expect(exitedBeforeStdinClosed, `the server kept the connection through ${typed} renegotiations\n${describeRun(result)}`).to.equal(true);
          expect(serverFinishedCount(result.stdout), describeRun(result)).to.be.within(1, c.maxHandshakes);
          await waitUntil(() => seen.closed, "the handler's socket to close");
          expect(seen.errors.map((error) => error.code ?? error.message)).to.have.length.at.least(1);
          expect(seen.errors[0]?.code, seen.errors[0]?.message).to.match(c.code);
          await waitUntil(() => server.listener.stats().active === 0, 'the connection to be released');
          expectBalanced(server.listener);
        });
      });
    }
  }
});

function curlHasHttp2(): boolean {
  try {
    return /^Features:.*\bHTTP2\b/m.test(execFileSync('curl', ['-V'], { encoding: 'utf8' }));
  } catch {
    return false;
  }
}

describe('HTTP routing: connections that used the SNI credential go to the HTTP handler', function () {
  const cleanup = useCleanup();
  const web = (_request: http.IncomingMessage, response: http.ServerResponse): void => {
    response.end('web');
  };

  function curl(port: number, ...args: string[]): Promise<ProcessResult> {
    return run(
      cleanup,
      'curl',
      ['-sSk', '--max-time', '5', '--resolve', `localhost:${port}:127.0.0.1`, '-w', '\n%{http_version}', ...args, `https://localhost:${port}/`],
      { closeStdin: true, timeoutMs: 10_000 },
    );
  }

  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      it('serves curl (SNI localhost) from the request listener, and a client without SNI from the handler', async function () {
        const server = await startListener(cleanup, { backend, credential: primary, sniCredential, http: web }, greet('protocol\n'));
        const result = await curl(server.port, '--http1.1');
        expect(result.code, describeRun(result)).to.equal(0);
        expect(result.stdout).to.equal('web\n1.1');
        const client = tlsConnect(cleanup, server.port);
        await client.receive('protocol\n');
        expect(server.served.map((info) => info.sniCredentialUsed)).to.deep.equal([false]);
        expect(server.listener.stats().sni).to.deep.equal({ sniCredential: 1, primaryCredential: 1 });
      });

      it('hands SNI connections to a given http.Server', async function () {
        const httpServer = http.createServer((_request, response) => response.end('from http.Server'));
        cleanup.add(() => httpServer.close());
        const server = await startListener(cleanup, { backend, credential: primary, sniCredential, http: httpServer }, greet('protocol\n'));
        const result = await curl(server.port, '--http1.1');
        expect(result.stdout, describeRun(result)).to.equal('from http.Server\n1.1');
        expect(server.served).to.deep.equal([]);
      });

      it('sends a client that sends SNI to the protocol handler when there is no SNI credential', async function () {
        const server = await startListener(cleanup, { backend, credential: primary, http: web }, greet('protocol\n'));
        const client = tlsConnect(cleanup, server.port, { servername: 'localhost' });
        await client.receive('protocol\n');
        expect((await server.servedCount(1)).sniCredentialUsed).to.equal(false);
      });

      it('speaks HTTP/2 to curl --http2 when alpn offers h2', async function () {
        if (!curlHasHttp2()) this.skip();
        const server = await startListener(cleanup, { backend, credential: primary, sniCredential, http: web, alpn: ['h2', 'http/1.1'] }, greet('protocol\n'));
        const result = await curl(server.port, '--http2');
        expect(result.code, describeRun(result)).to.equal(0);
        expect(result.stdout).to.equal('web\n2');
        const client = tlsConnect(cleanup, server.port, { ALPNProtocols: ['http/1.1', 'h2'] });
        await client.receive('protocol\n');
        expect((await server.servedCount(1)).alpnProtocol).to.equal('http/1.1');
      });

      it('speaks HTTP/1.1 to curl --http1.1 when alpn offers h2 and http/1.1', async function () {
        const server = await startListener(cleanup, { backend, credential: primary, sniCredential, http: web, alpn: ['h2', 'http/1.1'] }, greet('protocol\n'));
        const result = await curl(server.port, '--http1.1');
        expect(result.stdout, describeRun(result)).to.equal('web\n1.1');
      });
    });
  }
});
