// Behind a PROXY balancer (the header read natively, the ClientHello then peeked): the classes of
// ClientHello and record-layer cases tlsfuzzer's scripts send, run through a relay that puts a
// version 2 header in front of each connection, get from the listener what tls.createServer
// gives the same bytes without the header. Each case here is one of those classes, hand-built.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { createTestPki } from './support/pki.js';
import { inet4, v2 } from './support/proxy_headers.js';
import { captureClientHello, expectBalanced, startListener, tlsConnect, useCleanup, waitUntil } from './support/tls_harness.js';
import type { RunningListener } from './support/tls_harness.js';
import { EXTENSION_ALPN, firstAnswer, handshakeOf, inRecords, paddedTo, serverHelloProtocol, splitHello, withExtension, withMoreCiphers } from './support/hello_builder.js';
import { startReference } from './support/hello_cases.js';

const pki = await createTestPki();
const credential = { key: pki.server.key, cert: pki.server.cert };
const ALPN = ['h2', 'http/1.1'];
const HEADER = v2({ familyTransport: 0x11, addresses: inet4('203.0.113.9', '198.51.100.1', 4444, 443) });

describe('Behind a PROXY header read natively, every ClientHello gets what tls.createServer gives it', function () {
  const cleanup = useCleanup();
  let listener: RunningListener;
  let referencePort: number;
  let handlerErrors: string[];

  beforeEach(async function () {
    handlerErrors = [];
    // The handler leaves the connection open: only the client, or a TLS error, ends it.
    listener = await startListener(cleanup, { backend: 'native', credential, alpn: ALPN, proxyProtocol: 'v2', trustedProxies: ['127.0.0.1'], handshakeTimeout: 20_000 }, (socket) => {
      socket.on('error', (error: Error & { code?: string }) => handlerErrors.push(error.code ?? error.message));
      socket.write('hi');
    });
    referencePort = await startReference(cleanup, credential, ALPN);
  });

  async function tls12Hello(): Promise<ReturnType<typeof splitHello>> {
    return splitHello(await captureClientHello({ maxVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] }));
  }

  it('an ALPN list holding an empty name: OpenSSL\'s decode_error alert, reported with its ERR_SSL_ code', async function () {
    const hello = inRecords(handshakeOf(withExtension(await tls12Hello(), EXTENSION_ALPN, Buffer.from([0, 4, 2, 0x68, 0x32, 0]))));
    const reference = await firstAnswer(cleanup, referencePort, hello);
    expect(reference).to.equal('alert:50');
    expect(await firstAnswer(cleanup, listener.port, Buffer.concat([HEADER, hello]))).to.equal(reference);
    const { error } = await listener.nextClientError();
    expect(error.code, error.message).to.match(/^ERR_SSL_/);
  });

  it('a hello in one-byte records: served, with its ALPN protocol', async function () {
    const hello = inRecords(handshakeOf(await tls12Hello()), 1);
    expect(await serverHelloProtocol(cleanup, referencePort, hello)).to.equal('http/1.1');
    expect(await serverHelloProtocol(cleanup, listener.port, Buffer.concat([HEADER, hello]))).to.equal('http/1.1');
  });

  it('a 130,000-byte hello, more than the kernel queues unread: served with its ALPN protocol', async function () {
    const hello = paddedTo(withMoreCiphers(await tls12Hello(), 65_000), 130_000);
    expect(await serverHelloProtocol(cleanup, referencePort, hello)).to.equal('http/1.1');
    expect(await serverHelloProtocol(cleanup, listener.port, Buffer.concat([HEADER, hello]))).to.equal('http/1.1');
    await waitUntil(() => listener.listener.stats().active === 0, 'the connection to be released');
    expectBalanced(listener.listener);
  });

  it('a forged record after the handshake: the connection closes at once, as a fatal alert must end it', async function () {
    // The TLS client runs over a TCP socket the test also writes to: the header, then the forgery.
    const tcp = net.connect(listener.port, '127.0.0.1');
    cleanup.add(() => tcp.destroy());
    tcp.write(HEADER);
    const client = tlsConnect(cleanup, listener.port, { socket: tcp, ALPNProtocols: ['http/1.1'] });
    await client.receive('hi');
    // An application-data record whose 32 bytes no key produced: its MAC cannot verify.
    tcp.write(Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20]), randomBytes(32)]));
    await client.whenClosed();
    await waitUntil(() => listener.listener.stats().active === 0, 'the connection to be released');
    expect(handlerErrors[0]).to.match(/^ERR_SSL_/);
    expectBalanced(listener.listener);
  });
});
