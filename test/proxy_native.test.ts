// Behind a PROXY balancer with the addon, the header is read natively (native/proxy_frame.h
// frames it from a peek, then exactly its bytes are read) and the ClientHello stays in the
// kernel: the handler gets one TLSSocket opened on the descriptor, and every decision the JS
// reader made (its refusals, as early; health checks; the hello's ALPN) comes out the same.
import net from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import { createTestPki } from './support/pki.js';
import { inet4, proxiedTlsConnect, tlv, v1, v2 } from './support/proxy_headers.js';
import { delay, expectBalanced, greet, rawConnect, startListener, useCleanup, waitUntil } from './support/tls_harness.js';

const pki = await createTestPki();
const credential = { key: pki.server.key, cert: pki.server.cert };
const LOOPBACK = ['127.0.0.1', '::1'];
const HEADER = v2({ familyTransport: 0x11, addresses: inet4('203.0.113.9', '198.51.100.1', 4444, 443) });

/** A client that sends `header`, waits, then starts TLS (its hello in a later segment). */
function headerThenTls(port: number, header: Buffer, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  const raw = net.connect({ host: '127.0.0.1', port });
  return new Promise((resolve, reject) => {
    raw.once('error', reject);
    raw.once('connect', () => {
      raw.write(header);
      setTimeout(() => {
        const client = tls.connect({ socket: raw, rejectUnauthorized: false, ...options });
        client.once('error', reject);
        client.once('secureConnect', () => resolve(client));
      }, 100);
    });
  });
}

describe('PROXY header read natively: one TLSSocket on the descriptor, the same decisions as the JS reader', function () {
  const cleanup = useCleanup();

  for (const alpn of [undefined, ['h2', 'http/1.1']]) {
    it(`the handler's TLSSocket has no net.Socket under it (${alpn ? 'with' : 'without'} alpn)`, async function () {
      const parents: unknown[] = [];
      const running = await startListener(cleanup, { backend: 'native', credential, ...(alpn ? { alpn } : {}), proxyProtocol: 'v2', trustedProxies: LOOPBACK }, (socket) => {
        // Node keeps the net.Socket a TLSSocket was built on as `_parent`.
        parents.push((socket as unknown as { _parent?: unknown })._parent ?? null);
        socket.end('hi');
      });
      const client = proxiedTlsConnect(cleanup, running.port, HEADER, alpn ? { ALPNProtocols: ['http/1.1', 'h2'] } : {});
      await client.receive('hi');
      expect(parents).to.deep.equal([null]);
      const info = await running.servedCount(1);
      expect(info).to.deep.include({ remoteAddress: '203.0.113.9', remotePort: 4444, alpnProtocol: alpn ? 'http/1.1' : false });
      expectBalanced(running.listener);
    });
  }

  it('the hello sent after the header, in a later segment: peeked then, served with its ALPN choice', async function () {
    const running = await startListener(cleanup, { backend: 'native', credential, alpn: ['h2', 'http/1.1'], proxyProtocol: 'any', trustedProxies: LOOPBACK }, greet('hi'));
    const client = await headerThenTls(running.port, v1('PROXY TCP4 203.0.113.8 198.51.100.1 4343 443'), { ALPNProtocols: ['http/1.1'] });
    cleanup.add(() => client.destroy());
    expect(client.alpnProtocol).to.equal('http/1.1');
    expect(await running.servedCount(1)).to.deep.include({ remoteAddress: '203.0.113.8', remotePort: 4343 });
  });

  // The header's own peek holds the hello when both came together: C++ parses it there, and the
  // hello needs no wait of its own. What it asks for must reach the TLSSocket as from that wait.
  it('the header and a hello with a server name in one segment: the SNI credential and the client\'s first protocol', async function () {
    const running = await startListener(
      cleanup,
      { backend: 'native', credential, sniCredential: { key: pki.sni.key, cert: pki.sni.cert }, alpn: ['h2', 'http/1.1'], proxyProtocol: 'v2', trustedProxies: LOOPBACK },
      greet('hi'),
    );
    const named = proxiedTlsConnect(cleanup, running.port, HEADER, { servername: 'sni.test', ALPNProtocols: ['http/1.1', 'h2'] });
    await named.receive('hi');
    expect(named.socket.alpnProtocol).to.equal('http/1.1');
    expect(named.serverCommonName()).to.equal('sni.test');
    const unnamed = proxiedTlsConnect(cleanup, running.port, HEADER, { ALPNProtocols: ['h2', 'http/1.1'] });
    await unnamed.receive('hi');
    expect(unnamed.socket.alpnProtocol).to.equal('h2');
    expect(unnamed.serverCommonName()).to.not.equal('sni.test');
    const infos = await running.servedCount(2);
    expect(infos).to.deep.include({ remoteAddress: '203.0.113.9', remotePort: 4444 });
    expect(running.listener.stats().sni).to.deep.equal({ sniCredential: 1, primaryCredential: 1 });
    expectBalanced(running.listener);
  });

  it('the header with only the hello\'s first bytes, the rest later: the hello is peeked again, served with its name and protocol', async function () {
    const running = await startListener(
      cleanup,
      { backend: 'native', credential, sniCredential: { key: pki.sni.key, cert: pki.sni.cert }, alpn: ['h2', 'http/1.1'], proxyProtocol: 'v2', trustedProxies: LOOPBACK },
      greet('hi'),
    );
    const client = proxiedTlsConnect(cleanup, running.port, HEADER, { servername: 'sni.test', ALPNProtocols: ['http/1.1'] }, 'hello-split');
    await client.receive('hi');
    expect(client.socket.alpnProtocol).to.equal('http/1.1');
    expect(client.serverCommonName()).to.equal('sni.test');
    expect(running.listener.stats().sni).to.deep.equal({ sniCredential: 1, primaryCredential: 0 });
    expectBalanced(running.listener);
  });

  // The JS reader refused these from their first bytes; the native framer hands the parser those
  // bytes as soon as they are in, so the refusal does not wait for bytes that never come.
  const early: Array<[string, 'v1' | 'v2' | 'any', Buffer]> = [
    ['a version 2 signature with version 3', 'any', Buffer.concat([HEADER.subarray(0, 12), Buffer.from([0x31])])],
    ['a version 2 signature with command 2', 'v2', Buffer.concat([HEADER.subarray(0, 12), Buffer.from([0x22])])],
    ['a version 2 header with family 5', 'any', Buffer.concat([HEADER.subarray(0, 13), Buffer.from([0x51])])],
    ['a version 2 header with UNSPEC family over TCP', 'v2', Buffer.concat([HEADER.subarray(0, 13), Buffer.from([0x01])])],
    ['a version 1 start on a version 2 listener', 'v2', Buffer.from('PRO')],
    ['a version 2 start on a version 1 listener', 'v1', HEADER.subarray(0, 3)],
    ['a signature that goes wrong at its 5th byte', 'any', Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x01])],
    ['a version 1 line with a line feed and no carriage return', 'any', Buffer.from('PROXY TCP4\n')],
  ];
  for (const [what, mode, bytes] of early) {
    it(`${what}, then nothing: ERR_PROXY_PROTOCOL_INVALID at once, not the timeout`, async function () {
      const running = await startListener(cleanup, { backend: 'native', credential, handshakeTimeout: 60_000, proxyProtocol: mode, trustedProxies: LOOPBACK }, greet('hi'));
      const raw = await rawConnect(cleanup, running.port);
      raw.socket.write(bytes);
      await raw.whenClosed();
      expect((await running.nextClientError()).error.code).to.equal('ERR_PROXY_PROTOCOL_INVALID');
      await waitUntil(() => running.listener.stats().active === 0, 'the connection to be released');
      expectBalanced(running.listener);
    });
  }

  it('a 65,535-byte header of 21,841 empty TLVs: ERR_PROXY_PROTOCOL_INVALID; one of 256 TLVs filling 65,535 bytes is served', async function () {
    const running = await startListener(cleanup, { backend: 'native', credential, proxyProtocol: 'v2', trustedProxies: LOOPBACK }, greet('hi'));
    const empties = v2({ familyTransport: 0x11, addresses: inet4('203.0.113.9', '198.51.100.1', 1, 2), tlvs: Array.from({ length: 21_841 }, () => tlv(0x04, Buffer.alloc(0))) });
    expect(empties.length).to.equal(16 + 65_535);
    const refused = await rawConnect(cleanup, running.port);
    refused.socket.write(empties);
    await refused.whenClosed();
    const { error } = await running.nextClientError();
    expect(error.code).to.equal('ERR_PROXY_PROTOCOL_INVALID');
    expect(error.message).to.contain('more than 256 TLVs');
    // 12 bytes of addresses, then 255 NOOP TLVs of 3 + 252 bytes and one of 3 + 495: 65,535, 256 TLVs.
    const full = [...Array.from({ length: 255 }, () => tlv(0x04, Buffer.alloc(252))), tlv(0x04, Buffer.alloc(495))];
    const header = v2({ familyTransport: 0x11, addresses: inet4('203.0.113.10', '198.51.100.1', 5, 6), tlvs: full });
    expect(header.length).to.equal(16 + 65_535);
    const client = proxiedTlsConnect(cleanup, running.port, header);
    await client.receive('hi');
    expect(await running.servedCount(1)).to.deep.include({ remoteAddress: '203.0.113.10' });
  });

  it('a LOCAL header then a close, or a reset, is a health check; then one byte and a close is a failure', async function () {
    const running = await startListener(cleanup, { backend: 'native', credential, alpn: ['h2'], proxyProtocol: 'v2', trustedProxies: LOOPBACK }, greet('hi'));
    const local = v2({ command: 'LOCAL', familyTransport: 0x00 });
    for (const [sent, reset] of [[local, false], [local, true], [Buffer.concat([local, Buffer.from([0x16])]), false]] as const) {
      const raw = await rawConnect(cleanup, running.port);
      raw.socket.write(sent);
      await delay(50);
      if (reset) raw.socket.resetAndDestroy();
      else raw.socket.end();
      await raw.whenClosed();
    }
    await waitUntil(() => running.listener.stats().active === 0 && running.clientErrors.length >= 1, 'the three connections to end');
    expect(running.listener.stats().proxyProtocol.healthChecks).to.equal(2);
    expect(running.clientErrors.map(({ error }) => error.code)).to.deep.equal(['ERR_CLIENT_CLOSED']);
    expectBalanced(running.listener);
  });
});
