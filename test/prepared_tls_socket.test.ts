// A hello that comes after the accept: with `alpn` the listener makes the connection's TLSSocket
// while the client's hello is on its way (src/tls/prepared_sockets.ts), with the context
// the last hello was served with, and sets the protocol the hello chose when it is in. These are
// the cases where that socket could serve the wrong thing: the client's protocol set late, a
// guessed context the hello does not choose, and clients that never send a hello.
import { X509Certificate } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import { delay, expectBalanced, greet, rawConnect, startListener, TlsClient, useCleanup, waitUntil } from './support/tls_harness.js';
import type { RunningListener } from './support/tls_harness.js';
import type { Cleanup } from './support/waiting.js';

/** A TLS client whose ClientHello leaves only once the listener has accepted, and waited for it. */
async function lateHelloClient(cleanup: Cleanup, running: RunningListener, options: tls.ConnectionOptions): Promise<TlsClient> {
  const accepted = running.listener.stats().accepted;
  const raw = await rawConnect(cleanup, running.port);
  await waitUntil(() => running.listener.stats().accepted > accepted, 'the accept');
  // The listener is waiting for the hello by now, with its socket made ahead.
  await delay(30);
  const socket = tls.connect({ socket: raw.socket as net.Socket, rejectUnauthorized: false, ...options });
  cleanup.add(() => socket.destroy());
  return new TlsClient(socket);
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

function servedFingerprint(client: TlsClient): string | undefined {
  return client.socket.getPeerX509Certificate()?.fingerprint256;
}

describe('a ClientHello that comes after the accept is served by a TLSSocket made while it was on its way', function () {
  const cleanup = useCleanup();
  let pki: TestPki;
  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
  });

  async function start(handshakeTimeout?: number): Promise<RunningListener> {
    return startListener(
      cleanup,
      {
        backend: 'native',
        alpn: ['h2', 'http/1.1'],
        credential: { cert: pki.server.cert, key: pki.server.key },
        sniCredential: { cert: pki.sni.cert, key: pki.sni.key },
        ...(handshakeTimeout !== undefined ? { handshakeTimeout } : {}),
      },
      greet('hi'),
    );
  }

  it("gets the client's preferred protocol, set on the socket after it was made", async function () {
    const running = await start();
    for (const [offered, chosen] of [
      [['http/1.1', 'h2'], 'http/1.1'],
      [['h2', 'http/1.1'], 'h2'],
      [['spdy/3', 'http/1.1'], 'http/1.1'],
      [['spdy/3'], false],
    ] as const) {
      const client = await lateHelloClient(cleanup, running, { ALPNProtocols: [...offered] });
      await client.receive('hi');
      expect(client.socket.alpnProtocol, `offered ${offered.join(',')}`).to.equal(chosen);
      client.socket.destroy();
    }
    await waitUntil(() => running.listener.stats().active === 0, 'every connection to be released');
    expectBalanced(running.listener);
  });

  it('gets the credential its hello chooses when the socket was made with the other one (a name after none, none after a name)', async function () {
    const running = await start();
    const primary = fingerprint(pki.server.cert);
    const sni = fingerprint(pki.sni.cert);
    // Each socket is made with the context the previous hello was served with: every switch
    // below makes it with the wrong one, which the listener must replace.
    for (const servername of [undefined, 'sni.test', undefined, undefined, 'sni.test', 'sni.test', undefined]) {
      const client = await lateHelloClient(cleanup, running, { ALPNProtocols: ['http/1.1'], ...(servername !== undefined ? { servername } : {}) });
      await client.receive('hi');
      expect(servedFingerprint(client), `servername ${servername ?? 'none'}`).to.equal(servername !== undefined ? sni : primary);
      expect(client.socket.alpnProtocol).to.equal('http/1.1');
      client.socket.destroy();
    }
    await waitUntil(() => running.listener.stats().active === 0, 'every connection to be released');
    expect(running.listener.stats().sni).to.deep.equal({ sniCredential: 3, primaryCredential: 4 });
    expectBalanced(running.listener);
  });

  it('clients that never send a hello (more than the sockets made ahead) time out, and the next client is served', async function () {
    const running = await start(300);
    const silent = await Promise.all(Array.from({ length: 24 }, () => rawConnect(cleanup, running.port)));
    await waitUntil(() => running.listener.stats().accepted === silent.length, 'every accept');
    await Promise.all(silent.map((raw) => raw.whenClosed()));
    await waitUntil(() => running.clientErrors.length === silent.length, 'a tlsClientError for each');
    expect(running.clientErrors.map(({ error }) => error.code)).to.deep.equal(silent.map(() => 'ERR_TLS_HANDSHAKE_TIMEOUT'));
    for (let i = 0; i < 3; i++) {
      const client = await lateHelloClient(cleanup, running, { ALPNProtocols: ['http/1.1', 'h2'] });
      await client.receive('hi');
      expect(client.socket.alpnProtocol).to.equal('http/1.1');
      client.socket.destroy();
    }
    await waitUntil(() => running.listener.stats().active === 0, 'every connection to be released');
    expectBalanced(running.listener);
  });
});
