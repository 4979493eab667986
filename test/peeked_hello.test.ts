// The ClientHello peeked in C++ (native/hello_peek.cc): a listener with `alpn` answers every
// hello as tls.createServer({ ALPNProtocols }) does, because OpenSSL reads the client's own bytes.
// Each class of case tlsfuzzer's ClientHello, extension, SNI, ALPN, fragmentation and large-hello
// scripts found different before is here, hand-built from a real client's hello, and sent to
// both servers side by side.
import tls from 'node:tls';
import type net from 'node:net';
import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import { captureClientHello, expectBalanced, rawConnect, startListener, useCleanup, waitUntil } from './support/tls_harness.js';
import type { RunningListener } from './support/tls_harness.js';
import {
  EXTENSION_ALPN,
  EXTENSION_SERVER_NAME,
  firstAnswer,
  handshakeOf,
  inRecords,
  fullyPadded,
  paddedTo,
  serverFlight,
  serverHelloProtocol,
  serverNameData,
  splitHello,
  withExtension,
  withMoreCiphers,
} from './support/hello_builder.js';
import type { HelloParts } from './support/hello_builder.js';

const ALPN = ['h2', 'http/1.1'];
const DECODE_ERROR = 'alert:50';
const SERVER_HELLO = 'handshake:2';

/** An SSLv2-format CLIENT-HELLO (RFC 6101 E.1), as very old clients and scanners send. */
function sslv2Hello(): Buffer {
  const ciphers = Buffer.from([0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, 0x00, 0x00, 0x0a]);
  const challenge = Buffer.alloc(16, 7);
  const body = Buffer.concat([
    Buffer.from([0x01, 0x03, 0x01, 0x00, ciphers.length, 0x00, 0x00, 0x00, challenge.length]),
    ciphers,
    challenge,
  ]);
  return Buffer.concat([Buffer.from([0x80 | (body.length >> 8), body.length & 0xff]), body]);
}

describe('ClientHello peeked natively: a listener with alpn answers every hello as tls.createServer({ ALPNProtocols })', function () {
  const cleanup = useCleanup();
  let pki: TestPki;
  let parts: HelloParts;
  let listener: RunningListener;
  let referencePort: number;

  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
    parts = splitHello(await captureClientHello({ servername: 'sni.example', ALPNProtocols: ['http/1.1', 'h2'] }));
  });

  beforeEach(async function () {
    listener = await startListener(
      cleanup,
      { backend: 'native', credential: pki.server, sniCredential: pki.sni, alpn: ALPN, handshakeTimeout: 20_000 },
      (socket) => {
        socket.end('hi');
      },
    );
    const reference = tls.createServer({
      key: pki.server.key,
      cert: pki.server.cert,
      ALPNProtocols: ALPN,
      SNICallback: (_name, callback) => callback(null, tls.createSecureContext({ key: pki.sni.key, cert: pki.sni.cert })),
    });
    reference.on('secureConnection', (socket) => socket.end('hi'));
    reference.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => reference.listen(0, '127.0.0.1', resolve));
    cleanup.add(() => new Promise<void>((resolve) => reference.close(() => resolve())));
    referencePort = (reference.address() as net.AddressInfo).port;
  });

  /** Both servers' first answers to `bytes`. */
  async function answers(bytes: Buffer): Promise<{ listener: string; reference: string }> {
    return { listener: await firstAnswer(cleanup, listener.port, bytes), reference: await firstAnswer(cleanup, referencePort, bytes) };
  }

  const malformed: Array<{ name: string; hello: () => Buffer }> = [
    {
      name: 'a server_name list longer than its extension',
      hello: () => {
        const data = Buffer.from(serverNameData(Buffer.from('sni.example')));
        data.writeUInt16BE(data.readUInt16BE(0) + 1, 0);
        return inRecords(handshakeOf(withExtension(parts, EXTENSION_SERVER_NAME, data)));
      },
    },
    {
      name: 'an ALPN list holding an empty protocol name',
      hello: () => inRecords(handshakeOf(withExtension(parts, EXTENSION_ALPN, Buffer.from([0, 4, 2, 0x68, 0x32, 0])))),
    },
    {
      name: 'an extensions block one byte longer than the hello',
      hello: () => {
        const message = handshakeOf(parts);
        const at = 4 + parts.head.length;
        message.writeUInt16BE(message.readUInt16BE(at) + 1, at);
        return inRecords(message);
      },
    },
  ];
  for (const { name, hello } of malformed) {
    it(`${name}: the client receives OpenSSL's decode_error alert, as from tls.createServer`, async function () {
      const got = await answers(hello());
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
      const hello = paddedTo(parts, size);
      expect(hello.length).to.equal(size);
      const got = await answers(hello);
      expect(got).to.deep.equal({ listener: SERVER_HELLO, reference: SERVER_HELLO });
    });
  }

  it('a valid hello larger than the kernel\'s receive queue (128 KiB, OpenSSL\'s largest is 128.3) gets its ALPN protocol, as from tls.createServer', async function () {
    // The queue stops near 125 KiB until its reader consumes: the peeker reads the rest off
    // the socket and hands it over (native/hello_take.h); before, OpenSSL got it with no ALPN.
    const hello = paddedTo(withMoreCiphers(splitHello(await captureClientHello({ maxVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] })), 65_000), 130_000);
    expect(hello.length).to.equal(130_000);
    const got = { listener: await serverHelloProtocol(cleanup, listener.port, hello), reference: await serverHelloProtocol(cleanup, referencePort, hello) };
    expect(got).to.deep.equal({ listener: 'http/1.1', reference: 'http/1.1' });
    await waitUntil(() => listener.listener.stats().active === 0, 'the connection to be released');
    expectBalanced(listener.listener);
  });

  // Beyond what the peek takes (native/hello_parse.h kMaxHelloStreamBytes): a 131,000-byte
  // hello (OpenSSL takes up to 131,396) in 256-byte records, as tlsfuzzer's large-hello scripts
  // send. Never parsed, it reaches OpenSSL with the primary context, whose SNICallback still
  // picks the credential, and OpenSSL selects from the server's whole ALPN list.
  for (const servername of ['sni.example', undefined]) {
    it(`a hello too large to peek, ${servername ? 'with' : 'without'} a server name: the same ALPN protocol and certificate as from tls.createServer`, async function () {
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

  it('a reset that comes with the hello\'s first bytes, after the accept: the connection fails with ECONNRESET, not ERR_CLIENT_CLOSED', async function () {
    const hello = await captureClientHello({ ALPNProtocols: ['http/1.1'] });
    const raw = await rawConnect(cleanup, listener.port);
    await waitUntil(() => listener.listener.stats().accepted === 1, 'the accept');
    // Both reach the socket before the loop polls again: one wake brings new bytes and the error.
    raw.socket.write(hello.subarray(0, 40));
    raw.socket.resetAndDestroy();
    const { error } = await listener.nextClientError();
    expect(error.code, error.message).to.equal('ECONNRESET');
    await waitUntil(() => listener.listener.stats().active === 0, 'the connection to be released');
    expectBalanced(listener.listener);
  });

  it('an empty handshake record before the hello: a ServerHello, as from tls.createServer', async function () {
    const hello = Buffer.concat([Buffer.from([22, 3, 1, 0, 0]), inRecords(handshakeOf(parts))]);
    const got = await answers(hello);
    expect(got.reference, 'tls.createServer').to.equal(SERVER_HELLO);
    expect(got.listener, 'the listener').to.equal(got.reference);
  });

  it('an SSLv2-format hello gets what tls.createServer gives it', async function () {
    const got = await answers(sslv2Hello());
    expect(got.listener).to.equal(got.reference);
    expect(got.listener).to.not.equal('closed');
  });

  const names: Array<{ name: string; bytes: Buffer }> = [
    { name: 'an empty host name', bytes: Buffer.alloc(0) },
    { name: 'a host name with control characters', bytes: Buffer.from('a\x01b\x7f.example', 'latin1') },
    { name: 'a UTF-8 host name', bytes: Buffer.from('bücher.example', 'utf8') },
    { name: 'a host name with a NUL', bytes: Buffer.from('a\0b.example', 'latin1') },
    { name: 'a 256-byte host name', bytes: Buffer.alloc(256, 0x61) },
  ];
  for (const { name, bytes } of names) {
    it(`${name}: the same first answer as tls.createServer`, async function () {
      const got = await answers(inRecords(handshakeOf(withExtension(parts, EXTENSION_SERVER_NAME, serverNameData(bytes)))));
      expect(got.listener).to.equal(got.reference);
      expect(got.listener).to.not.equal('closed');
    });
  }

  it('chooses the cipher by the server\'s order, as tls.createServer does', async function () {
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
});
