// The TLS listener driven by real tls.connect clients and raw loopback sockets, on both accept
// backends: credential choice by SNI, client-preference ALPN, client certificate chains, the
// setup timeout, malformed first bytes, Node's native TLS path, and the handler's lifecycle.
import { X509Certificate, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import type { ConnectionInfo } from '../src/tls/tls_setup.js';
import { TLSListener } from '../src/tls/tls_listener.js';
import { clientChainNamingIssuer, createTestPki } from './support/pki.js';
import type { ClientChain } from './support/pki.js';
import { writeInPieces } from './support/sockets.js';
import {
  BACKENDS,
  DEFAULT_WAIT_MS,
  captureClientHello,
  delay,
  expectBalanced,
  greet,
  rawConnect,
  startListener,
  tlsConnect,
  useCleanup,
  waitUntil,
  within,
} from './support/tls_harness.js';

const pki = await createTestPki();
const primary = { key: pki.server.key, cert: pki.server.cert };
const sniCredential = { key: pki.sni.key, cert: pki.sni.cert };

/** The listener's two first-byte paths: straight to OpenSSL, or through the ClientHello parser. */
const PATHS = [
  { label: 'without alpn (first bytes go straight to OpenSSL)', alpn: undefined },
  { label: 'with alpn (first bytes go through the ClientHello parser)', alpn: ['x-test'] },
] as const;

function alpnOption(alpn: readonly string[] | undefined): { alpn?: string[] } {
  return alpn === undefined ? {} : { alpn: [...alpn] };
}

function fingerprints(chain: ClientChain): string[] {
  return chain.certs.map((pem) => new X509Certificate(pem).fingerprint256);
}

function commonName(subject: string): string | undefined {
  return /^CN=(.*)$/m.exec(subject)?.[1];
}

function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no element at ${index}`);
  return item;
}

describe('TLS listener: the credential is chosen by SNI', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    for (const path of PATHS) {
      describe(`${backend} backend, ${path.label}`, function () {
        it('serves a client that sends no SNI with the primary credential', async function () {
          const server = await startListener(cleanup, { backend, credential: primary, sniCredential, ...alpnOption(path.alpn) }, greet('hi'));
          const client = tlsConnect(cleanup, server.port);
          await client.receive('hi');
          expect(client.serverCommonName()).to.equal('server.test');
          const info = await server.servedCount(1);
          expect(info.sniCredentialUsed).to.equal(false);
          expect(info.servername).to.equal(undefined);
          expect(server.listener.stats().sni).to.deep.equal({ sniCredential: 0, primaryCredential: 1 });
        });

        it('serves a client that sends SNI with the SNI credential, and says so', async function () {
          const server = await startListener(cleanup, { backend, credential: primary, sniCredential, ...alpnOption(path.alpn) }, greet('hi'));
          const client = tlsConnect(cleanup, server.port, { servername: 'sni.test' });
          await client.receive('hi');
          expect(client.serverCommonName()).to.equal('sni.test');
          const info = await server.servedCount(1);
          expect(info.sniCredentialUsed).to.equal(true);
          expect(info.servername).to.equal('sni.test');
          expect(server.listener.stats().sni).to.deep.equal({ sniCredential: 1, primaryCredential: 0 });
        });

        it('serves the SNI credential even when its key type is not the primary\'s and the client prefers the primary\'s', async function () {
          // An ECDSA primary and an RSA SNI credential: a client that lists ECDSA first (Node's
          // and OpenSSL's default) must still get the certificate of the name it asked for.
          const rsaSni = { key: pki.rsaServer.key, cert: pki.rsaServer.cert };
          const server = await startListener(cleanup, { backend, credential: primary, sniCredential: rsaSni, ...alpnOption(path.alpn) }, greet('hi'));
          const withSni = tlsConnect(cleanup, server.port, { servername: 'rsa.server.test' });
          await withSni.receive('hi');
          expect(withSni.serverCommonName()).to.equal('rsa.server.test');
          const withoutSni = tlsConnect(cleanup, server.port);
          await withoutSni.receive('hi');
          expect(withoutSni.serverCommonName()).to.equal('server.test');
          expect(server.listener.stats().sni).to.deep.equal({ sniCredential: 1, primaryCredential: 1 });
        });

        it('serves every client with the primary credential when there is no SNI credential', async function () {
          const server = await startListener(cleanup, { backend, credential: primary, ...alpnOption(path.alpn) }, greet('hi'));
          const withSni = tlsConnect(cleanup, server.port, { servername: 'sni.test' });
          await withSni.receive('hi');
          const withoutSni = tlsConnect(cleanup, server.port);
          await withoutSni.receive('hi');
          expect(withSni.serverCommonName()).to.equal('server.test');
          expect(withoutSni.serverCommonName()).to.equal('server.test');
          await server.servedCount(2);
          expect(server.served.map((info) => info.sniCredentialUsed)).to.deep.equal([false, false]);
          expect(server.listener.stats().sni).to.deep.equal({ sniCredential: 0, primaryCredential: 2 });
        });
      });
    }
  }
});

describe('TLS listener: ALPN follows the client preference', function () {
  const cleanup = useCleanup();
  const alpnHandler = (socket: tls.TLSSocket, info: ConnectionInfo): void => {
    socket.write(`alpn=${String(info.alpnProtocol)}\n`);
  };
  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      const cases = [
        { name: "picks the client's first choice the server supports", server: ['a', 'b'], client: ['b', 'a'], expected: 'b' },
        { name: 'picks the first client choice when both lists agree', server: ['a', 'b'], client: ['a', 'b'], expected: 'a' },
        { name: 'skips client choices the server lacks', server: ['a', 'b'], client: ['c', 'b'], expected: 'b' },
        { name: 'completes the handshake with no protocol when the lists do not overlap', server: ['a'], client: ['c'], expected: false },
        { name: 'selects no protocol for a client that sends no ALPN', server: ['a', 'b'], client: undefined, expected: false },
        { name: 'selects no protocol when the server has no ALPN list', server: undefined, client: ['a'], expected: false },
      ] as const;
      for (const c of cases) {
        it(c.name, async function () {
          const server = await startListener(cleanup, { backend, credential: primary, ...alpnOption(c.server) }, alpnHandler);
          const client = tlsConnect(cleanup, server.port, c.client === undefined ? {} : { ALPNProtocols: [...c.client] });
          await client.receive('\n');
          expect(client.socket.alpnProtocol).to.equal(c.expected);
          expect(client.received).to.equal(`alpn=${String(c.expected)}\n`);
          expect((await server.servedCount(1)).alpnProtocol).to.equal(c.expected);
        });
      }

      it('gives concurrent clients with opposite preferences each their own choice', async function () {
        const server = await startListener(cleanup, { backend, credential: primary, alpn: ['a', 'b'] }, alpnHandler);
        const clients = Array.from({ length: 20 }, (_unused, index) =>
          tlsConnect(cleanup, server.port, { ALPNProtocols: index % 2 === 0 ? ['a', 'b'] : ['b', 'a'] }),
        );
        await Promise.all(clients.map((client) => client.receive('\n')));
        clients.forEach((client, index) => {
          const expected = index % 2 === 0 ? 'a' : 'b';
          expect(client.socket.alpnProtocol, `client ${index}`).to.equal(expected);
          expect(client.received, `client ${index}`).to.equal(`alpn=${expected}\n`);
        });
      });
    });
  }
});

describe('TLS listener: client certificate chains (requestClientCert)', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      it('accepts a client that sends no certificate, with an empty chain', async function () {
        const server = await startListener(cleanup, { backend, credential: primary, requestClientCert: true }, greet('accepted\n'));
        const client = tlsConnect(cleanup, server.port);
        await client.receive('accepted\n');
        expect((await server.servedCount(1)).peerCertificateChain).to.deep.equal([]);
      });

      const accepted = [
        ['a self-signed certificate', pki.clientChain1, 'client-chain-1'],
        ['[leaf, ca]', pki.clientChain2, 'client-chain-2'],
        ['[leaf, id, ca]', pki.clientChain3, 'client-chain-3'],
        ['[leaf, id, net, ca]', pki.clientChain4, 'client-chain-4'],
      ] as const;
      for (const [shape, chain, leafName] of accepted) {
        it(`accepts ${shape} and hands the handler the chain as sent`, async function () {
          const server = await startListener(cleanup, { backend, credential: primary, requestClientCert: true }, greet('accepted\n'));
          const client = tlsConnect(cleanup, server.port, { cert: chain.chainPem, key: chain.key });
          await client.receive('accepted\n');
          const info = await server.servedCount(1);
          expect(info.peerCertificateChain).to.have.length(chain.certs.length);
          expect(commonName(info.peerCertificateChain[0]?.subject ?? '')).to.equal(leafName);
          expect(info.peerCertificateChain.map((cert) => cert.fingerprint256)).to.deep.equal(fingerprints(chain));
          expect(server.clientErrors).to.deep.equal([]);
        });
      }

      it('accepts a chain rooted in a CA it has never seen: the anchor is the last certificate sent', async function () {
        const server = await startListener(cleanup, { backend, credential: primary, requestClientCert: true }, greet('accepted\n'));
        const client = tlsConnect(cleanup, server.port, { cert: pki.foreignClient.chainPem, key: pki.foreignClient.key });
        await client.receive('accepted\n');
        expect((await server.servedCount(1)).peerCertificateChain).to.have.length(2);
      });

      it('does not ask for a certificate unless requestClientCert is set', async function () {
        const server = await startListener(cleanup, { backend, credential: primary }, greet('accepted\n'));
        const client = tlsConnect(cleanup, server.port, { cert: pki.clientChain2.chainPem, key: pki.clientChain2.key });
        await client.receive('accepted\n');
        expect((await server.servedCount(1)).peerCertificateChain).to.deep.equal([]);
      });

      const rejected = [
        ['a chain of five certificates', pki.clientChain5, 'chain_too_long', undefined],
        ['an expired leaf', pki.expiredClient, 'expired', undefined],
        ['a leaf that is not yet valid', pki.notYetValidClient, 'expired', undefined],
        ['a leaf whose signature is not by the CA it names', pki.unknownCaClient, 'unknown_ca', undefined],
        ['a chain of five certificates over TLS 1.2', pki.clientChain5, 'chain_too_long', 'TLSv1.2'],
        ['an expired leaf over TLS 1.2', pki.expiredClient, 'expired', 'TLSv1.2'],
      ] as const;
      for (const [what, chain, reason, maxVersion] of rejected) {
        it(`rejects ${what} as ${reason}, closing the connection before the handler`, async function () {
          const server = await startListener(cleanup, { backend, credential: primary, requestClientCert: true }, greet('accepted\n'));
          const client = tlsConnect(cleanup, server.port, {
            cert: chain.chainPem,
            key: chain.key,
            ...(maxVersion !== undefined ? { maxVersion } : {}),
          });
          const { error, info } = await server.nextClientError();
          expect(error.code).to.equal('ERR_CLIENT_CERT_REJECTED');
          expect(error.reason, error.message).to.equal(reason);
          expect(info.id).to.equal(1);
          // The client finished its side of the handshake (TLS 1.3 always, 1.2 too here) before
          // the server judged the chain: what it sees is a connection closed with no data.
          await client.whenClosed();
          expect(client.received).to.equal('');
          expect(server.served).to.deep.equal([]);
          await waitUntil(() => server.listener.stats().active === 0, 'the rejected connection to be released');
          const stats = server.listener.stats();
          expect(stats.handshakes).to.deep.equal({ completed: 0, failed: 1, timedOut: 0, aborted: 0 });
          expectBalanced(server.listener);
        });
      }
    });
  }
});

/**
 * One of Node's bundled roots with an EC key: OpenSSL links a certificate only to an issuer
 * whose key type matches its signature, and the test PKI signs with P-256.
 */
function bundledEcRoot(): { pem: string; commonName: string } {
  for (const pem of tls.rootCertificates) {
    const cert = new X509Certificate(pem);
    if (cert.publicKey.asymmetricKeyType === 'ec') return { pem, commonName: commonName(cert.subject) ?? cert.subject };
  }
  throw new Error('Node bundles no root with an EC key');
}

describe("TLS listener: the client's chain is only what the client sent", function () {
  const cleanup = useCleanup();
  const root = bundledEcRoot();
  let namingRoot: ClientChain;
  before(async function () {
    namingRoot = await clientChainNamingIssuer('names-a-bundled-root', root.pem);
  });

  /** [first `count` certificates of `chain`], as a client sends them. */
  function sending(chain: ClientChain, count: number): { cert: string; key: string } {
    return { cert: chain.certs.slice(0, count).join(''), key: chain.key };
  }

  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      const notSelfSigned = [
        {
          what: `[leaf, intermediate] whose intermediate names a bundled root (${root.commonName}), with key and cert`,
          credential: () => primary,
          client: () => sending(namingRoot, 2),
          anchor: '#1',
        },
        {
          what: 'the same chain, with a caller-built SecureContext that has no ca (Node loads its bundled roots)',
          credential: () => tls.createSecureContext(primary),
          client: () => sending(namingRoot, 2),
          anchor: '#1',
        },
        {
          what: '[leaf, intermediate] with a caller-built SecureContext whose ca holds the root',
          credential: () => tls.createSecureContext({ ...primary, ca: [at(pki.clientChain3.certs, 2)] }),
          client: () => sending(pki.clientChain3, 2),
          anchor: '#1',
        },
        {
          what: 'a leaf issued by a CA that a caller-built SecureContext has in its ca',
          credential: () => tls.createSecureContext({ ...primary, ca: [at(pki.clientChain2.certs, 1)] }),
          client: () => sending(pki.clientChain2, 1),
          anchor: '#0',
        },
      ];
      for (const c of notSelfSigned) {
        it(`rejects ${c.what} as unknown_ca: the anchor is the client's own last certificate`, async function () {
          const server = await startListener(cleanup, { backend, credential: c.credential(), requestClientCert: true }, greet('accepted\n'));
          const client = tlsConnect(cleanup, server.port, c.client());
          const { error } = await server.nextClientError();
          expect(error.code).to.equal('ERR_CLIENT_CERT_REJECTED');
          expect(error.reason, error.message).to.equal('unknown_ca');
          expect(error.message).to.include(`certificate ${c.anchor} (`).and.include("is the chain's trust anchor but is not self-signed");
          expect(error.message).to.not.include(root.commonName);
          await client.whenClosed();
          expect(server.served).to.deep.equal([]);
        });
      }

      it("leaves Node's own getPeerCertificate(true) whole for the handler, with key and cert", async function () {
        const chain = pki.clientChain3;
        const server = await startListener(cleanup, { backend, credential: primary, requestClientCert: true }, (socket) => {
          const seen = new Set<string>();
          for (let cert = socket.getPeerCertificate(true); cert?.raw && !seen.has(cert.fingerprint256); cert = cert.issuerCertificate) {
            seen.add(cert.fingerprint256);
          }
          socket.write(`node sees ${seen.size}\n`);
        });
        const client = tlsConnect(cleanup, server.port, sending(chain, 3));
        await client.receive('node sees 3\n');
      });

      it('hands over a whole chain as sent when the caller-built context holds its root too', async function () {
        const chain = pki.clientChain3;
        const credential = tls.createSecureContext({ ...primary, ca: [at(chain.certs, 2)] });
        const server = await startListener(cleanup, { backend, credential, requestClientCert: true }, greet('accepted\n'));
        const client = tlsConnect(cleanup, server.port, sending(chain, 3));
        await client.receive('accepted\n');
        const info = await server.servedCount(1);
        expect(info.peerCertificateChain.map((cert) => cert.fingerprint256)).to.deep.equal(fingerprints(chain));
      });
    });
  }
});

describe('TLS listener: tlsClientError says which client failed', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      const failures: Array<[string, (port: number) => Promise<{ localPort: number | undefined }>]> = [
        [
          'a rejected client certificate',
          async (port) => {
            const client = tlsConnect(cleanup, port, { cert: pki.expiredClient.chainPem, key: pki.expiredClient.key });
            await client.whenSecure();
            return { localPort: client.localPort };
          },
        ],
        [
          'bytes OpenSSL cannot read',
          async (port) => {
            const raw = await rawConnect(cleanup, port);
            raw.socket.write('GET / HTTP/1.1\r\n\r\n');
            return { localPort: raw.localPort };
          },
        ],
        [
          'a setup timeout',
          async (port) => {
            const raw = await rawConnect(cleanup, port);
            return { localPort: raw.localPort };
          },
        ],
      ];
      for (const [what, provoke] of failures) {
        it(`gives the id, remote address and remote port after ${what}`, async function () {
          const server = await startListener(cleanup, { backend, credential: primary, requestClientCert: true, handshakeTimeout: 300 }, greet('hi'));
          const { localPort } = await provoke(server.port);
          const { info } = await server.nextClientError();
          expect(info).to.deep.equal({ id: 1, remoteAddress: '127.0.0.1', remotePort: localPort });
        });
      }
    });
  }
});

describe('TLS listener: one code per cause of a failed setup, the client named, on every path', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    for (const path of PATHS) {
      describe(`${backend} backend, ${path.label}`, function () {
        // The setup timeout is long: every failure below must come from its own cause.
        const options = { backend, credential: primary, handshakeTimeout: 20_000, ...alpnOption(path.alpn) } as const;
        const causes: Array<{ what: string; code: string; provoke: (port: number) => Promise<number | undefined>; extra?: object }> = [
          {
            what: 'the client closing (FIN) in the middle of its ClientHello',
            code: 'ERR_CLIENT_CLOSED',
            provoke: async (port) => {
              const hello = await captureClientHello({ ALPNProtocols: ['x-test'] });
              const raw = await rawConnect(cleanup, port);
              raw.socket.end(hello.subarray(0, Math.floor(hello.length / 2)));
              return raw.localPort;
            },
          },
          {
            what: 'the client resetting (RST) in the middle of its ClientHello',
            code: 'ECONNRESET',
            provoke: async (port) => {
              const hello = await captureClientHello({ ALPNProtocols: ['x-test'] });
              const raw = await rawConnect(cleanup, port);
              raw.socket.write(hello.subarray(0, 10));
              await delay(50);
              const localPort = raw.localPort;
              raw.socket.resetAndDestroy();
              return localPort;
            },
          },
          {
            what: 'the idle timeout while the client says nothing',
            code: 'ERR_IDLE_TIMEOUT',
            extra: { idleTimeout: 200 },
            provoke: async (port) => (await rawConnect(cleanup, port)).localPort,
          },
        ];
        for (const cause of causes) {
          it(`reports ${cause.what} as ${cause.code} with the client's address, counted as failed`, async function () {
            const server = await startListener(cleanup, { ...options, ...cause.extra }, greet('hi'));
            const localPort = await cause.provoke(server.port);
            const { error, info } = await server.nextClientError();
            expect(error.code, error.message).to.equal(cause.code);
            expect(info).to.deep.equal({ id: 1, remoteAddress: '127.0.0.1', remotePort: localPort });
            await waitUntil(() => server.listener.stats().active === 0, 'the failed connection to be released');
            expect(server.listener.stats().handshakes).to.deep.equal({ completed: 0, failed: 1, timedOut: 0, aborted: 0 });
          });
        }

        it('counts handshakes that close() cuts short as aborted, not as client failures, and reports none of them', async function () {
          const server = await startListener(cleanup, options, greet('hi'));
          for (let i = 0; i < 3; i++) await rawConnect(cleanup, server.port);
          await waitUntil(() => server.listener.stats().active === 3, 'three connections in setup');
          await within(server.listener.close(), 'close()');
          await delay(20);
          expect(server.clientErrors).to.deep.equal([]);
          expect(server.listener.stats()).to.deep.include({
            accepted: 3,
            closed: 3,
            active: 0,
            leaked: 0,
            handshakes: { completed: 0, failed: 0, timedOut: 0, aborted: 3 },
          });
        });
      });
    }
  }
});

describe('TLS listener: the whole setup must finish within handshakeTimeout', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    for (const path of PATHS) {
      describe(`${backend} backend, ${path.label}`, function () {
        const options = { backend, credential: primary, handshakeTimeout: 300, ...alpnOption(path.alpn) } as const;

        it('rejects a handshakeTimeout that is not a whole number of ms from 1 to 2^31-1 with ERR_INVALID_OPTION', function () {
          for (const handshakeTimeout of [0, 0.5, Number.NaN, Infinity, 2 ** 31]) {
            expect(() => new TLSListener({ ...options, port: 0, handshakeTimeout }, greet('hi')), String(handshakeTimeout))
              .to.throw()
              .with.property('code', 'ERR_INVALID_OPTION');
          }
        });

        it('closes a client that sends nothing', async function () {
          const server = await startListener(cleanup, options, greet('hi'));
          const client = await rawConnect(cleanup, server.port);
          await client.whenClosed();
          const { error, info } = await server.nextClientError();
          expect(error.code).to.equal('ERR_TLS_HANDSHAKE_TIMEOUT');
          expect(info.id).to.equal(1);
          expect(client.received.length).to.equal(0);
          expect(server.listener.stats().handshakes.timedOut).to.equal(1);
        });

        it('closes a client that sends half a ClientHello and stops', async function () {
          const hello = await captureClientHello({ servername: 'sni.test', ALPNProtocols: ['x-test'] });
          const server = await startListener(cleanup, options, greet('hi'));
          const client = await rawConnect(cleanup, server.port);
          client.socket.write(hello.subarray(0, Math.floor(hello.length / 2)));
          await client.whenClosed();
          const { error } = await server.nextClientError();
          expect(error.code).to.equal('ERR_TLS_HANDSHAKE_TIMEOUT');
          expect(server.listener.stats().handshakes.timedOut).to.equal(1);
        });

        it('counts every timed-out connection', async function () {
          const server = await startListener(cleanup, options, greet('hi'));
          const clients = await Promise.all([rawConnect(cleanup, server.port), rawConnect(cleanup, server.port), rawConnect(cleanup, server.port)]);
          await Promise.all(clients.map((client) => client.whenClosed()));
          await waitUntil(() => server.clientErrors.length === 3, 'three tlsClientErrors');
          expect(server.clientErrors.map(({ error }) => error.code)).to.deep.equal(Array(3).fill('ERR_TLS_HANDSHAKE_TIMEOUT'));
          await waitUntil(() => server.listener.stats().active === 0, 'the connections to be released');
          expect(server.listener.stats().handshakes).to.deep.equal({ completed: 0, failed: 0, timedOut: 3, aborted: 0 });
          expectBalanced(server.listener);
        });

        it('stops timing once the handshake is done: a served connection outlives the timeout', async function () {
          const server = await startListener(cleanup, options, (socket) => {
            socket.write('first\n');
            socket.on('data', () => socket.write('second\n'));
          });
          const client = tlsConnect(cleanup, server.port, path.alpn === undefined ? {} : { ALPNProtocols: [...path.alpn] });
          await client.receive('first\n');
          await delay(3 * 300);
          client.socket.write('more');
          await client.receive('second\n');
          expect(client.closed).to.equal(false);
          expect(server.clientErrors).to.deep.equal([]);
          expect(server.listener.stats().handshakes).to.deep.equal({ completed: 1, failed: 0, timedOut: 0, aborted: 0 });
        });
      });
    }
  }
});

/** A TLS record header claiming a 65535-byte handshake record, then 20 KiB of it. */
function oversizedClientHello(): Buffer {
  const body = Buffer.alloc(20 * 1024);
  body[0] = 0x01; // ClientHello
  body.writeUIntBE(0xffff - 4, 1, 3);
  body.writeUInt16BE(0x0303, 4);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]), body]);
}

/** A full-size (16 KiB) record opening a ClientHello message that declares 16 MiB. */
function hugeHandshakeMessage(): Buffer {
  const body = Buffer.alloc(1 << 14);
  body[0] = 0x01; // ClientHello
  body.writeUIntBE(0xffffff, 1, 3);
  body.writeUInt16BE(0x0303, 4);
  const header = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
  header.writeUInt16BE(body.length, 3);
  return Buffer.concat([header, body]);
}

describe('TLS listener: malformed first bytes fail the connection, not the listener', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    for (const path of PATHS) {
      describe(`${backend} backend, ${path.label}`, function () {
        // A long timeout, so a closed connection proves the input was rejected, not timed out.
        const options = { backend, credential: primary, handshakeTimeout: 20_000, ...alpnOption(path.alpn) } as const;
        // Read in JS (js backend), peeked (native) or not read first: whatever the hello readers
        // cannot parse, OpenSSL meets and answers as tls.createServer does.

        const inputs: Array<{ name: string; bytes: () => Promise<Buffer>; endAfter: boolean; openSslCode: RegExp }> = [
          { name: 'an HTTP request', bytes: () => Promise.resolve(Buffer.from('GET / HTTP/1.1\r\n\r\n')), endAfter: false, openSslCode: /^ERR_SSL_/ },
          { name: 'a record header claiming more than 16 KiB', bytes: () => Promise.resolve(oversizedClientHello()), endAfter: false, openSslCode: /^ERR_SSL_/ },
          { name: 'a ClientHello declaring 16 MiB', bytes: () => Promise.resolve(hugeHandshakeMessage()), endAfter: false, openSslCode: /^ERR_SSL_/ },
          {
            name: 'half a ClientHello, then the end of the stream',
            bytes: async () => {
              const hello = await captureClientHello({ ALPNProtocols: ['x-test'] });
              return hello.subarray(0, Math.floor(hello.length / 2));
            },
            endAfter: true,
            openSslCode: /^ERR_CLIENT_CLOSED$/,
          },
        ];
        for (const input of inputs) {
          it(`rejects ${input.name}, closes the connection and keeps serving`, async function () {
            const bytes = await input.bytes();
            const server = await startListener(cleanup, options, greet('hi'));
            const raw = await rawConnect(cleanup, server.port);
            raw.socket.write(bytes);
            if (input.endAfter) raw.socket.end();
            await raw.whenClosed();
            const { error } = await server.nextClientError();
            expect(error.code, error.message).to.be.a('string');
            expect(error.code, error.message).to.not.equal('ERR_TLS_HANDSHAKE_TIMEOUT');
            // A client that closes early is one cause with one code, whichever path read its bytes.
            if (input.endAfter) expect(error.code, error.message).to.equal('ERR_CLIENT_CLOSED');
            else expect(error.code, error.message).to.match(input.openSslCode);
            await waitUntil(() => server.listener.stats().active === 0, 'the rejected connection to be released');
            expect(server.listener.stats().handshakes).to.deep.equal({ completed: 0, failed: 1, timedOut: 0, aborted: 0 });

            const client = tlsConnect(cleanup, server.port);
            await client.receive('hi');
            expect(server.listener.stats().handshakes.completed).to.equal(1);
            expectBalanced(server.listener);
          });
        }
      });
    }
  }
});

/**
 * `count` full-size handshake records, each opening a ClientHello that claims 64 KiB, less the
 * last byte: a flood never ends, so its bytes never end on a record boundary either.
 */
function fullSizeHandshakeRecords(count: number): Buffer {
  const body = Buffer.alloc(1 << 14, 0x41);
  body[0] = 0x01; // ClientHello
  body.writeUIntBE(64 * 1024, 1, 3);
  body.writeUInt16BE(0x0303, 4);
  const header = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
  header.writeUInt16BE(body.length, 3);
  const record = Buffer.concat([header, body]);
  const records = Buffer.concat(Array.from({ length: count }, () => record));
  return records.subarray(0, records.length - 1);
}

describe('TLS listener: a flood of handshake records is cut off at the ClientHello cap, not at handshakeTimeout', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    for (const path of PATHS) {
      describe(`${backend} backend, ${path.label}`, function () {
        it('rejects a client streaming full-size records in writes that never end on a record boundary, within seconds', async function () {
          // The timeout is long, so only a rejection as the bytes arrive ends this within the wait.
          const server = await startListener(cleanup, { backend, credential: primary, handshakeTimeout: 30_000, ...alpnOption(path.alpn) }, greet('hi'));
          const raw = await rawConnect(cleanup, server.port);
          let rejected = false;
          // 4 MiB at most, in 16390-byte writes over 16389-byte records.
          const flooding = writeInPieces(raw.socket, fullSizeHandshakeRecords(256), 16_390, () => rejected);
          const { error } = await server.nextClientError(DEFAULT_WAIT_MS);
          rejected = true;
          // Past the hello readers' caps (or not read first), OpenSSL's own verdict.
          expect(error.code, error.message).to.match(/^ERR_SSL_/);
          await raw.whenClosed();
          await flooding;
          await waitUntil(() => server.listener.stats().active === 0, 'the rejected connection to be released');
          expect(server.listener.stats().handshakes).to.deep.equal({ completed: 0, failed: 1, timedOut: 0, aborted: 0 });
          expectBalanced(server.listener);
        });
      });
    }
  }
});

describe("TLS listener: connections run on Node's native TLS over the accepted TCP handle", function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    for (const path of PATHS) {
      describe(`${backend} backend, ${path.label}`, function () {
        it('hands the handler a TLSSocket whose handle is a TLSWrap over a TCP handle', async function () {
          const handles: string[] = [];
          const server = await startListener(cleanup, { backend, credential: primary, ...alpnOption(path.alpn) }, (socket) => {
            const handle = (socket as unknown as { _handle?: { constructor: { name: string }; _parent?: { constructor: { name: string } } } })._handle;
            handles.push(`${handle?.constructor.name ?? 'none'} over ${handle?._parent?.constructor.name ?? 'none'}`);
            socket.write('hi');
          });
          const client = tlsConnect(cleanup, server.port);
          await client.receive('hi');
          expect(handles).to.deep.equal(['TLSWrap over TCP']);
        });

        it('serves a prebuilt tls.SecureContext given as credential and sniCredential', async function () {
          const server = await startListener(
            cleanup,
            { backend, credential: tls.createSecureContext(primary), sniCredential: tls.createSecureContext(sniCredential), ...alpnOption(path.alpn) },
            greet('hi'),
          );
          const plain = tlsConnect(cleanup, server.port);
          await plain.receive('hi');
          const named = tlsConnect(cleanup, server.port, { servername: 'sni.test' });
          await named.receive('hi');
          expect([plain.serverCommonName(), named.serverCommonName()]).to.deep.equal(['server.test', 'sni.test']);
        });

        // A session ticket is sealed with its secure context's ticket keys, so a later connection
        // resumes only if it is served by the very context that issued the ticket.
        for (const [credentialLabel, credentialOf] of [
          ['key and cert', () => primary],
          ['a prebuilt SecureContext', () => tls.createSecureContext(primary)],
        ] as const) {
          for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
            it(`resumes ${maxVersion} sessions across connections: one secure context (${credentialLabel})`, async function () {
              const server = await startListener(cleanup, { backend, credential: credentialOf(), ...alpnOption(path.alpn) }, greet('hi'));
              const first = tlsConnect(cleanup, server.port, { maxVersion });
              await first.receive('hi');
              await waitUntil(() => first.session !== undefined, 'a session ticket');
              expect(first.socket.isSessionReused()).to.equal(false);
              first.destroy();
              const second = tlsConnect(cleanup, server.port, { maxVersion, ...(first.session !== undefined ? { session: first.session } : {}) });
              await second.receive('hi');
              expect(second.socket.isSessionReused()).to.equal(true);
            });
          }
        }

        it('resumes sessions for the SNI credential too', async function () {
          const server = await startListener(cleanup, { backend, credential: primary, sniCredential, ...alpnOption(path.alpn) }, greet('hi'));
          const first = tlsConnect(cleanup, server.port, { servername: 'sni.test' });
          await first.receive('hi');
          await waitUntil(() => first.session !== undefined, 'a session ticket');
          first.destroy();
          const second = tlsConnect(cleanup, server.port, { servername: 'sni.test', ...(first.session !== undefined ? { session: first.session } : {}) });
          await second.receive('hi');
          expect(second.socket.isSessionReused()).to.equal(true);
          const info = await server.servedCount(2);
          expect(info.sniCredentialUsed).to.equal(true);
          expect(info.servername).to.equal('sni.test');
          expect(server.listener.stats().sni).to.deep.equal({ sniCredential: 2, primaryCredential: 0 });
        });

        // A resumed session keeps only the client's leaf, not the chain it sent, so a chain can
        // be judged only in a full handshake; and OpenSSL refuses to resume a session that asked
        // for a certificate on a context without a session id context.
        for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
        it(`judges the chain of a client that offers a ${maxVersion} session as in its first handshake`, async function () {
          const server = await startListener(cleanup, { backend, credential: primary, requestClientCert: true, ...alpnOption(path.alpn) }, greet('accepted\n'));
          const chain = pki.clientChain2;
          const first = tlsConnect(cleanup, server.port, { cert: chain.chainPem, key: chain.key, maxVersion });
          await first.receive('accepted\n');
          await waitUntil(() => first.session !== undefined, 'a session ticket');
          first.destroy();
          const second = tlsConnect(cleanup, server.port, {
            cert: chain.chainPem,
            key: chain.key,
            maxVersion,
            ...(first.session !== undefined ? { session: first.session } : {}),
          });
          await waitUntil(() => second.received.includes('accepted\n') || second.closed || server.clientErrors.length > 0, 'the second connection to be judged');
          expect(server.clientErrors.map(({ error }) => `${error.code ?? ''} ${error.message}`)).to.deep.equal([]);
          await second.receive('accepted\n');
          const info = await server.servedCount(2);
          expect(info.peerCertificateChain.map((cert) => cert.fingerprint256)).to.deep.equal(fingerprints(chain));
        });
        }
      });
    }
  }
});

describe('TLS listener: a TLS error after setup ends the connection and reaches the handler', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      describe(`${backend} backend, ${maxVersion}`, function () {
        it("closes at once on a forged application-data record, with an 'error' on the handler's socket", async function () {
          const seen: { errors: Array<Error & { code?: string }>; closed: boolean } = { errors: [], closed: false };
          const server = await startListener(cleanup, { backend, credential: primary }, (socket) => {
            socket.on('error', (error: Error & { code?: string }) => seen.errors.push(error));
            socket.on('close', () => {
              seen.closed = true;
            });
            socket.write('hi');
          });
          // The TLS client runs over a TCP socket the test can also write to directly.
          const tcp = net.connect(server.port, '127.0.0.1');
          cleanup.add(() => tcp.destroy());
          const client = tlsConnect(cleanup, server.port, { socket: tcp, maxVersion });
          await client.receive('hi');
          // An application-data record whose 32 bytes no key produced: its MAC cannot verify.
          tcp.write(Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20]), randomBytes(32)]));
          await client.whenClosed();
          await waitUntil(() => seen.closed, "the handler's socket to close");
          expect(seen.errors.map((error) => error.code ?? error.message)).to.have.length.at.least(1);
          expect(seen.errors[0]?.code, seen.errors[0]?.message).to.match(/^ERR_SSL_/);
          await waitUntil(() => server.listener.stats().active === 0, 'the connection to be released');
          const stats = server.listener.stats();
          expect([stats.accepted, stats.closed, stats.active, stats.leaked]).to.deep.equal([1, 1, 0, 0]);
          expect(stats.handshakes).to.deep.equal({ completed: 1, failed: 0, timedOut: 0, aborted: 0 });
        });
      });
    }
  }
});

describe("TLS listener: the handler's lifecycle", function () {
  const cleanup = useCleanup();
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  before(() => process.on('unhandledRejection', onUnhandled));
  after(() => process.off('unhandledRejection', onUnhandled));
  beforeEach(() => {
    unhandled.length = 0;
  });
  afterEach(async function () {
    // Give a stray rejection a turn of the loop to surface before judging.
    await delay(20);
    expect(unhandled, 'unhandled rejections').to.deep.equal([]);
  });

  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      it('keeps the socket open until an async handler settles, then ends it gracefully', async function () {
        let finish: () => void = () => undefined;
        const handlerDone = new Promise<void>((resolve) => {
          finish = resolve;
        });
        const server = await startListener(cleanup, { backend, credential: primary }, async (socket) => {
          socket.write('working\n');
          await handlerDone;
          socket.write('done\n');
        });
        const client = tlsConnect(cleanup, server.port);
        await client.receive('working\n');
        await delay(100);
        expect(client.ended, 'ended before the handler settled').to.equal(false);
        expect(server.listener.stats().active).to.equal(1);
        finish();
        await client.receive('done\n');
        await waitUntil(() => client.ended, "the client to see 'end'");
        client.socket.end();
        await client.whenClosed();
        await waitUntil(() => server.listener.stats().closed === 1, 'the server to count the connection closed');
        expect(server.connectionErrors).to.deep.equal([]);
        expect(server.listener.stats().handlerErrors).to.equal(0);
        expectBalanced(server.listener);
      });

      it('leaves a synchronous handler in charge of its socket', async function () {
        const server = await startListener(cleanup, { backend, credential: primary }, (socket) => {
          socket.on('data', (data: Buffer) => socket.end(`echo:${data.toString()}`));
        });
        const client = tlsConnect(cleanup, server.port);
        await client.whenSecure();
        await delay(100);
        expect(client.ended).to.equal(false);
        client.socket.write('ping');
        await client.receive('echo:ping');
        await waitUntil(() => client.ended, "the client to see 'end'");
        expect(server.listener.stats().handlerErrors).to.equal(0);
      });

      for (const [how, handlerOf] of [
        [
          'throws',
          (error: Error) => () => {
            throw error;
          },
        ],
        ['rejects', (error: Error) => () => Promise.reject(error)],
        [
          'rejects after using the socket',
          (error: Error) => async (socket: tls.TLSSocket) => {
            socket.write('partial\n');
            await delay(10);
            throw error;
          },
        ],
      ] as const) {
        it(`destroys the connection and reports ERR_HANDLER_FAILED when the handler ${how}`, async function () {
          const failure = new Error(`handler ${how}`);
          const server = await startListener(cleanup, { backend, credential: primary }, handlerOf(failure));
          const client = tlsConnect(cleanup, server.port);
          await client.whenClosed();
          await waitUntil(() => server.connectionErrors.length === 1, 'a connectionError');
          const [reported] = server.connectionErrors;
          expect(reported?.error.code).to.equal('ERR_HANDLER_FAILED');
          expect(reported?.error.cause).to.equal(failure);
          expect(reported?.error.message).to.include(failure.message);
          expect(reported?.info.id).to.equal(1);
          await waitUntil(() => server.listener.stats().active === 0, 'the connection to be released');
          const stats = server.listener.stats();
          expect(stats.handlerErrors).to.equal(1);
          expect(stats.handshakes).to.deep.equal({ completed: 1, failed: 0, timedOut: 0, aborted: 0 });
          expectBalanced(server.listener);
        });
      }

      it('keeps its books exact through a mix of outcomes and close()', async function () {
        let served = 0;
        const never = new Promise<void>(() => undefined);
        const server = await startListener(cleanup, { backend, credential: primary, requestClientCert: true, handshakeTimeout: 300 }, async (socket) => {
          served++;
          if (served === 2) throw new Error('second handler fails');
          if (served === 3) return Promise.reject(new Error('third handler rejects'));
          socket.write('ok\n');
          // The first handler finishes (its connection is ended); the fourth runs until close().
          if (served === 4) await never;
        });
        const ok = tlsConnect(cleanup, server.port);
        await ok.receive('ok\n');
        const throwing = tlsConnect(cleanup, server.port);
        await throwing.whenClosed();
        const rejecting = tlsConnect(cleanup, server.port);
        await rejecting.whenClosed();
        const badChain = tlsConnect(cleanup, server.port, { cert: pki.clientChain5.chainPem, key: pki.clientChain5.key });
        await badChain.whenClosed();
        const silent = await rawConnect(cleanup, server.port);
        await silent.whenClosed();
        const open = tlsConnect(cleanup, server.port);
        await open.receive('ok\n');
        await waitUntil(() => server.listener.stats().active === 1, 'only the open connection to remain');
        expectBalanced(server.listener);
        await within(server.listener.close(), 'close()');
        const stats = server.listener.stats();
        expect(stats.accepted).to.equal(6);
        expect(stats.closed).to.equal(6);
        expect(stats.active).to.equal(0);
        expect(stats.leaked).to.equal(0);
        expect(stats.handshakes).to.deep.equal({ completed: 4, failed: 1, timedOut: 1, aborted: 0 });
        expect(stats.handlerErrors).to.equal(2);
        expect(server.connectionErrors.map(({ error }) => error.code)).to.deep.equal(['ERR_HANDLER_FAILED', 'ERR_HANDLER_FAILED']);
        expect(server.clientErrors.map(({ error }) => error.code)).to.deep.equal(['ERR_CLIENT_CERT_REJECTED', 'ERR_TLS_HANDSHAKE_TIMEOUT']);
        await open.whenClosed();
      });
    });
  }
});
