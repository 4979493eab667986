// One suite for every path that reads the ClientHello before OpenSSL does (peeked in C++, read
// in JS): a listener with `alpn` and `sniCredential` gives each class of hello in
// hello_cases.ts, sent raw, the answer tls.createServer({ ALPNProtocols, SNICallback }) gives
// the same bytes, because OpenSSL reads the client's own bytes either way. Each test file
// calls useComparison() inside its describe(), then itAnswersAsTlsCreateServer().
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import type { ListenerOptions } from '../../src/tls/tls_listener.js';
import { createTestPki } from './pki.js';
import type { TestPki } from './pki.js';
import { captureClientHello, expectBalanced, startListener, useCleanup, waitUntil } from './tls_harness.js';
import type { Cleanup, RunningListener } from './tls_harness.js';
import {
  EXTENSION_SERVER_NAME,
  firstAnswer,
  fullyPadded,
  handshakeOf,
  inRecords,
  paddedTo,
  serverFlight,
  serverNameData,
  splitHello,
  withExtension,
  withMoreCiphers,
} from './hello_builder.js';
import type { HelloParts } from './hello_builder.js';
import { DECODE_ERROR, EMPTY_HANDSHAKE_RECORD, malformedHellos, SERVER_HELLO, sslv2Hello, startReference, unusualNames } from './hello_cases.js';

export const ALPN = ['h2', 'http/1.1'];

/** What each test of the suite gets: both servers, fresh for each test. */
export interface Comparison {
  readonly cleanup: Cleanup;
  readonly pki: TestPki;
  /** A real client's hello (server name 'sni.example', ALPN ['http/1.1', 'h2']) taken apart. */
  readonly parts: HelloParts;
  readonly listener: RunningListener;
  readonly referencePort: number;
  /** Both servers' first answers to `bytes` (firstAnswer), the listener's first. */
  answers(bytes: Buffer, options?: { end?: boolean }): Promise<{ listener: string; reference: string }>;
}

/**
 * Registers the hooks that start, before each test, a listener with `options` (plus the
 * credentials, `alpn` and a long handshakeTimeout) whose handler ends each connection with
 * 'hi', and its reference; returns the getter of the running pair.
 */
export function useComparison(options: Pick<ListenerOptions, 'backend' | 'idleTimeout'>): () => Comparison {
  const cleanup = useCleanup();
  let pki: TestPki | undefined;
  let parts: HelloParts | undefined;
  let current: Comparison | undefined;

  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
    parts = splitHello(await captureClientHello({ servername: 'sni.example', ALPNProtocols: ['http/1.1', 'h2'] }));
  });

  beforeEach(async function () {
    if (pki === undefined || parts === undefined) throw new Error('the before() hook did not run');
    const listener = await startListener(
      cleanup,
      { ...options, credential: pki.server, sniCredential: pki.sni, alpn: ALPN, handshakeTimeout: 20_000 },
      (socket) => {
        socket.end('hi');
      },
    );
    const referencePort = await startReference(cleanup, pki.server, ALPN, pki.sni);
    current = {
      cleanup,
      pki,
      parts,
      listener,
      referencePort,
      answers: async (bytes, { end = false } = {}) => ({
        listener: await firstAnswer(cleanup, listener.port, bytes, { end }),
        reference: await firstAnswer(cleanup, referencePort, bytes, { end }),
      }),
    };
  });

  return () => {
    if (current === undefined) throw new Error('no comparison running (call inside a test)');
    return current;
  };
}

export function itAnswersAsTlsCreateServer(state: () => Comparison): void {
  for (const { name, hello } of malformedHellos) {
    it(`${name}: the client receives OpenSSL's decode_error alert, as from tls.createServer`, async function () {
      const { answers, parts, listener } = state();
      const got = await answers(hello(parts));
      expect(got.reference, 'tls.createServer').to.equal(DECODE_ERROR);
      expect(got.listener, 'the listener').to.equal(got.reference);
      const { error } = await listener.nextClientError();
      expect(error.code, error.message).to.match(/^ERR_SSL_/);
      await waitUntil(() => listener.listener.stats().active === 0, 'the connection to be released');
      expectBalanced(listener.listener);
    });
  }

  for (const size of [17_000, 40_000]) {
    it(`serves a valid ${size}-byte hello in ${Math.ceil(size / 16389)} records (a ServerHello), as tls.createServer does`, async function () {
      const { answers, parts } = state();
      const hello = paddedTo(parts, size);
      expect(hello.length).to.equal(size);
      const got = await answers(hello);
      expect(got).to.deep.equal({ listener: SERVER_HELLO, reference: SERVER_HELLO });
    });
  }

  // A 131,000-byte hello (OpenSSL takes up to 131,396) in 256-byte records, as tlsfuzzer's
  // large-hello scripts send: beyond what the hello readers take (the peek's limit, the JS
  // reader's 16 KiB). Never parsed, it reaches OpenSSL with the primary context, whose
  // SNICallback still picks the credential, and the ALPN callback picks the client's first
  // choice (h2 here, tls.createServer's pick too; test/unparsed_hello_alpn.test.ts has the rest).
  for (const servername of ['sni.example', undefined]) {
    it(`a hello too large to read first, ${servername ? 'with' : 'without'} a server name: the same ALPN protocol and certificate as from tls.createServer`, async function () {
      const { cleanup, pki, listener, referencePort } = state();
      const tls12 = splitHello(await captureClientHello({ ...(servername ? { servername } : {}), ALPNProtocols: ['h2', 'http/1.1'], maxVersion: 'TLSv1.2' }));
      const message = handshakeOf(fullyPadded(withMoreCiphers(tls12, 0xfe00)));
      expect(message.length).to.be.within(130_000, 131_396);
      const hello = inRecords(message, 256);
      const reference = await serverFlight(cleanup, referencePort, hello);
      const expected = servername ? pki.sni.cert : pki.server.cert;
      expect(reference.alpn, 'tls.createServer').to.equal('h2');
      expect(new X509Certificate(reference.leaf ?? '').fingerprint256).to.equal(new X509Certificate(expected).fingerprint256);
      const got = await serverFlight(cleanup, listener.port, hello);
      expect(got.alpn, 'the listener').to.equal(reference.alpn);
      expect(got.leaf?.equals(reference.leaf ?? Buffer.alloc(0)), 'the same certificate').to.equal(true);
    });
  }

  it('an empty handshake record before the hello: a ServerHello, as from tls.createServer', async function () {
    const { answers, parts } = state();
    const got = await answers(Buffer.concat([EMPTY_HANDSHAKE_RECORD, inRecords(handshakeOf(parts))]));
    expect(got.reference, 'tls.createServer').to.equal(SERVER_HELLO);
    expect(got.listener, 'the listener').to.equal(got.reference);
  });

  it('an SSLv2-format hello gets what tls.createServer gives it', async function () {
    const got = await state().answers(sslv2Hello());
    expect(got.listener).to.equal(got.reference);
    expect(got.listener).to.not.equal('closed');
  });

  for (const { name, bytes } of unusualNames) {
    it(`${name}: the same first answer as tls.createServer`, async function () {
      const { answers, parts } = state();
      const got = await answers(inRecords(handshakeOf(withExtension(parts, EXTENSION_SERVER_NAME, serverNameData(bytes)))));
      expect(got.listener).to.equal(got.reference);
      expect(got.listener).to.not.equal('closed');
    });
  }

  it('chooses the cipher by the server\'s order, as tls.createServer does', async function () {
    const { cleanup, listener, referencePort } = state();
    // The client prefers AES-128; Node's default order (the server's) puts AES-256 first.
    const cipherOf = async (port: number): Promise<string> => {
      const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ciphers: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384' });
      cleanup.add(() => client.destroy());
      return new Promise((resolve, reject) => {
        client.once('secureConnect', () => resolve(client.getCipher().name));
        client.once('error', reject);
      });
    };
    const reference = await cipherOf(referencePort);
    expect(reference).to.equal('TLS_AES_256_GCM_SHA384');
    expect(await cipherOf(listener.port)).to.equal(reference);
  });

  it('a UTF-8 server name from a real client: served with the SNI credential, named as Node names it', async function () {
    const { cleanup, pki, listener } = state();
    const servername = 'bücher.example';
    const client = tls.connect({ host: '127.0.0.1', port: listener.port, servername, ALPNProtocols: ['http/1.1'], rejectUnauthorized: false });
    cleanup.add(() => client.destroy());
    const certificate = await new Promise<X509Certificate>((resolve, reject) => {
      client.once('secureConnect', () => resolve(client.getPeerX509Certificate() as X509Certificate));
      client.once('error', reject);
    });
    expect(certificate.fingerprint256).to.equal(new X509Certificate(pki.sni.cert).fingerprint256);
    expect(client.alpnProtocol).to.equal('http/1.1');
    const info = await listener.servedCount(1);
    // Node gives a server socket the name's bytes as latin1 text.
    expect(info.servername).to.equal(Buffer.from(servername, 'utf8').toString('latin1'));
    expect(info.sniCredentialUsed).to.equal(true);
  });
}
