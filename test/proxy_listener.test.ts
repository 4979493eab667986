// Both listeners behind a PROXY protocol load balancer, on both accept backends, with clients
// that send the header the way a balancer does: the handler and every report name the client
// the header names, the bytes after the header reach TLS or the handler untouched, and bad,
// missing or untrusted headers close the connection before TLS with a coded, counted error.
import net from 'node:net';
import { expect } from 'chai';
import { TCPListener } from '../src/tcp_listener.js';
import type { TCPConnectionInfo } from '../src/tcp_listener.js';
import type { SetupFailureInfo } from '../src/listener.js';
import { createListener } from '../src/tls/tls_listener.js';
import { createTestPki } from './support/pki.js';
import { inet4, inet6, proxiedTlsConnect, tlv, v1, v2 } from './support/proxy_headers.js';
import { BACKENDS, delay, expectBalanced, greet, rawConnect, startListener, tlsConnect, useCleanup, waitUntil, within } from './support/tls_harness.js';
import type { ReportedError } from './support/tls_harness.js';

const pki = await createTestPki();
const credential = { key: pki.server.key, cert: pki.server.cert };
const LOOPBACK = ['127.0.0.1', '::1'];

const PATHS = [
  { label: 'without alpn (first bytes go straight to OpenSSL)', alpn: undefined },
  { label: 'with alpn (first bytes go through the ClientHello parser)', alpn: ['x-test'] },
] as const;

function alpnOption(alpn: readonly string[] | undefined): { alpn?: string[] } {
  return alpn === undefined ? {} : { alpn: [...alpn] };
}

describe('PROXY protocol, TLS listener: the handler sees the client the header names', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    for (const path of PATHS) {
      describe(`${backend} backend, ${path.label}`, function () {
        it('version 1, header and ClientHello in one segment', async function () {
          const running = await startListener(cleanup, { backend, credential, ...alpnOption(path.alpn), proxyProtocol: 'v1', trustedProxies: LOOPBACK }, greet('hi'));
          const client = proxiedTlsConnect(cleanup, running.port, v1('PROXY TCP4 203.0.113.7 198.51.100.1 4242 443'), path.alpn ? { ALPNProtocols: [...path.alpn] } : {});
          await client.receive('hi');
          const info = await running.servedCount(1);
          expect(info).to.deep.include({ remoteAddress: '203.0.113.7', remotePort: 4242 });
          expect(info.proxy).to.deep.include({ version: 1, command: 'proxy', family: 'IPv4', localAddress: '198.51.100.1', localPort: 443, proxyAddress: '127.0.0.1' });
          expect(info.alpnProtocol).to.equal(path.alpn ? 'x-test' : false);
          expectBalanced(running.listener);
        });

        it('version 2 over TCP6 with AUTHORITY and SSL TLVs, the header sent a byte per write', async function () {
          const running = await startListener(cleanup, { backend, credential, ...alpnOption(path.alpn), proxyProtocol: 'any', trustedProxies: ['127.0.0.0/8'] }, greet('hi'));
          const ssl = Buffer.concat([Buffer.from([0x01, 0, 0, 0, 0]), tlv(0x21, 'TLSv1.3')]);
          const header = v2({ familyTransport: 0x21, addresses: inet6('2001:db8:0:0:0:0:0:7', '2001:db8:0:0:0:0:0:1', 50000, 8443), tlvs: [tlv(0x02, 'shop.example'), tlv(0x20, ssl)] });
          const client = proxiedTlsConnect(cleanup, running.port, header, {}, 'bytewise');
          await client.receive('hi');
          const info = await running.servedCount(1);
          expect(info).to.deep.include({ remoteAddress: '2001:db8::7', remotePort: 50000 });
          expect(info.proxy?.tlvs.authority).to.equal('shop.example');
          expect(info.proxy?.tlvs.ssl).to.deep.include({ ssl: true, version: 'TLSv1.3' });
        });

        it('version 2 LOCAL (a health check): the socket’s own addresses', async function () {
          const running = await startListener(cleanup, { backend, credential, ...alpnOption(path.alpn), proxyProtocol: 'v2', trustedProxies: LOOPBACK }, greet('hi'));
          const client = proxiedTlsConnect(cleanup, running.port, v2({ command: 'LOCAL', familyTransport: 0x00 }));
          await client.receive('hi');
          const info = await running.servedCount(1);
          expect(info).to.deep.include({ remoteAddress: '127.0.0.1', remotePort: client.localPort });
          expect(info.proxy).to.deep.include({ version: 2, command: 'local', localAddress: '127.0.0.1', localPort: running.port });
        });
      });
    }
  }
});

describe('PROXY protocol, TLS listener: closed before TLS with a coded error, counted, nothing leaked', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      it('a peer not in trustedProxies: ERR_PROXY_PROTOCOL_UNTRUSTED, before it sends a byte', async function () {
        const running = await startListener(cleanup, { backend, credential, proxyProtocol: 'any', trustedProxies: ['10.0.0.0/8', '::ffff:192.0.2.1'] }, greet('hi'));
        const raw = await rawConnect(cleanup, running.port);
        await raw.whenClosed();
        const { error, info } = await running.nextClientError();
        expect(error.code).to.equal('ERR_PROXY_PROTOCOL_UNTRUSTED');
        expect(info).to.deep.include({ remoteAddress: '127.0.0.1', remotePort: raw.localPort });
        expect(raw.received.length).to.equal(0);
        await waitUntil(() => running.listener.stats().active === 0, 'the connection to be released');
        expect(running.listener.stats().proxyProtocol).to.deep.equal({ invalid: 0, untrusted: 1, healthChecks: 0 });
        expect(running.listener.stats().handshakes.failed).to.equal(1);
        expect(running.listener.metrics()).to.contain('native_tls_listener_proxy_protocol_rejections_total{reason="untrusted"} 1');
        expect(running.served).to.have.length(0);
        expectBalanced(running.listener);
      });

      const invalid: Array<[string, Buffer]> = [
        ['a malformed version 1 line', v1('PROXY TCP4 203.0.113.7 nowhere 1 2')],
        ['an oversized version 1 line', Buffer.from(`PROXY UNKNOWN ${'x'.repeat(200)}\r\n`)],
        ['a version 2 header with a bad family', Buffer.concat([v2({ familyTransport: 0x11, addresses: inet4('1.2.3.4', '5.6.7.8', 1, 2) }).subarray(0, 13), Buffer.from([0x44, 0, 0])])],
        ['a version 2 header to a version 1 listener', v2({ command: 'LOCAL', familyTransport: 0x00 })],
        ['no header: an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
      ];
      for (const [what, bytes] of invalid) {
        it(`${what}: ERR_PROXY_PROTOCOL_INVALID`, async function () {
          const running = await startListener(cleanup, { backend, credential, proxyProtocol: 'v1', trustedProxies: LOOPBACK }, greet('hi'));
          const raw = await rawConnect(cleanup, running.port);
          raw.socket.write(bytes);
          await raw.whenClosed();
          const { error, info } = await running.nextClientError();
          expect(error.code).to.equal('ERR_PROXY_PROTOCOL_INVALID');
          expect(info).to.deep.include({ remoteAddress: '127.0.0.1' });
          expect(raw.received.length).to.equal(0);
          await waitUntil(() => running.listener.stats().active === 0, 'the connection to be released');
          expect(running.listener.stats().proxyProtocol).to.deep.equal({ invalid: 1, untrusted: 0, healthChecks: 0 });
          expectBalanced(running.listener);
        });
      }

      it('no header: a TLS client straight to the listener gets no handshake', async function () {
        const running = await startListener(cleanup, { backend, credential, proxyProtocol: 'any', trustedProxies: LOOPBACK }, greet('hi'));
        const client = tlsConnect(cleanup, running.port);
        await client.whenClosed();
        expect(client.secure).to.equal(false);
        expect((await running.nextClientError()).error.code).to.equal('ERR_PROXY_PROTOCOL_INVALID');
      });

      it('a header that never finishes: the setup timeout, ERR_TLS_HANDSHAKE_TIMEOUT', async function () {
        const running = await startListener(cleanup, { backend, credential, handshakeTimeout: 300, proxyProtocol: 'any', trustedProxies: LOOPBACK }, greet('hi'));
        const raw = await rawConnect(cleanup, running.port);
        raw.socket.write('PROXY TCP4 1.2.3.4');
        await raw.whenClosed();
        expect((await running.nextClientError()).error.code).to.equal('ERR_TLS_HANDSHAKE_TIMEOUT');
        expect(running.listener.stats().handshakes.timedOut).to.equal(1);
      });

      it('the header counts against handshakeTimeout: a slow header leaves TLS the rest, not a fresh timeout', async function () {
        const running = await startListener(cleanup, { backend, credential, handshakeTimeout: 600, proxyProtocol: 'any', trustedProxies: LOOPBACK }, greet('hi'));
        const raw = await rawConnect(cleanup, running.port);
        // The header comes 300 ms into the setup, then no ClientHello: the deadline set at
        // accept fires first, not one restarted for TLS (whose message says "TLS setup").
        await delay(300);
        raw.socket.write(v1('PROXY TCP4 203.0.113.9 198.51.100.1 6000 443'));
        await raw.whenClosed();
        const { error, info } = await running.nextClientError();
        expect(error.code).to.equal('ERR_TLS_HANDSHAKE_TIMEOUT');
        expect(error.message).to.match(/^setup of connection 1 took longer than 600 ms/);
        expect(info.remoteAddress).to.equal('203.0.113.9');
      });

      it('a client that closes mid-header: ERR_CLIENT_CLOSED', async function () {
        const running = await startListener(cleanup, { backend, credential, proxyProtocol: 'any', trustedProxies: LOOPBACK }, greet('hi'));
        const raw = await rawConnect(cleanup, running.port);
        raw.socket.end('PROXY TCP4 1.2.3.4');
        await raw.whenClosed();
        expect((await running.nextClientError()).error.code).to.equal('ERR_CLIENT_CLOSED');
      });

      for (const path of PATHS) {
        it(`a TLS failure after a good header is reported with the header's client (${path.label})`, async function () {
          const running = await startListener(cleanup, { backend, credential, ...alpnOption(path.alpn), proxyProtocol: 'any', trustedProxies: LOOPBACK }, greet('hi'));
          const raw = await rawConnect(cleanup, running.port);
          raw.socket.write(Buffer.concat([v1('PROXY TCP4 203.0.113.9 198.51.100.1 6000 443'), Buffer.from('GET / HTTP/1.1\r\n\r\n')]));
          await raw.whenClosed();
          const { error, info } = await running.nextClientError();
          expect(error.code).to.not.match(/PROXY/);
          expect(info).to.deep.equal({ id: 1, remoteAddress: '203.0.113.9', remotePort: 6000 });
        });
      }
    });
  }

  it('logTLSErrors names the client the header names', async function () {
    const lines: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void lines.push(args.join(' '));
    try {
      const listener = createListener({ port: 0, host: '127.0.0.1', credential, logTLSErrors: true, proxyProtocol: 'v1', trustedProxies: LOOPBACK }, greet('hi'));
      cleanup.add(() => listener.close());
      const { port } = await within(listener.listen(), 'the listener');
      const raw = await rawConnect(cleanup, port);
      raw.socket.write(Buffer.concat([v1('PROXY TCP4 203.0.113.9 198.51.100.1 6000 443'), Buffer.from('not tls at all')]));
      await raw.whenClosed();
      await waitUntil(() => lines.length > 0, 'a logged TLS error');
    } finally {
      console.error = original;
    }
    expect(lines[0]).to.contain('from 203.0.113.9');
  });
});

describe('PROXY protocol, TCP listener: the handler gets the client’s address and its bytes untouched', function () {
  const cleanup = useCleanup();
  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      async function start(options: { trustedProxies: string[] }, handler: (socket: net.Socket, info: TCPConnectionInfo) => void | Promise<void>) {
        const served: TCPConnectionInfo[] = [];
        const errors: Array<{ error: ReportedError; info: SetupFailureInfo }> = [];
        const listener = new TCPListener({ port: 0, host: '127.0.0.1', backend, proxyProtocol: 'any', ...options }, (socket, info) => {
          served.push(info);
          return handler(socket, info);
        });
        listener.on('tlsClientError', (error: ReportedError, info: SetupFailureInfo) => errors.push({ error, info }));
        cleanup.add(() => listener.close());
        const { port } = await within(listener.listen(), 'the listener');
        return { listener, port, served, errors };
      }

      it('the bytes sent with the header reach a handler that starts reading later', async function () {
        const { port, served } = await start({ trustedProxies: LOOPBACK }, (socket) => {
          // Reading starts later: nothing may have been emitted to no one meanwhile.
          setTimeout(() => socket.on('data', (chunk: Buffer) => socket.write(chunk)), 50);
        });
        const raw = await rawConnect(cleanup, port);
        const payload = Buffer.from([0x00, 0x0d, 0x0a, 0x50, 0xff, ...Buffer.from('hello')]);
        raw.socket.write(Buffer.concat([v2({ familyTransport: 0x11, addresses: inet4('192.0.2.44', '192.0.2.1', 1234, 25) }), payload]));
        await waitUntil(() => raw.received.length >= payload.length, 'the echo');
        expect(raw.received.equals(payload)).to.equal(true);
        expect(served[0]).to.deep.include({ id: 1, remoteAddress: '192.0.2.44', remotePort: 1234 });
        expect(served[0]?.proxy).to.deep.include({ localAddress: '192.0.2.1', localPort: 25 });
      });

      it('an untrusted peer never reaches the handler', async function () {
        const { listener, port, served, errors } = await start({ trustedProxies: ['192.0.2.0/24'] }, () => undefined);
        const raw = await rawConnect(cleanup, port);
        raw.socket.write(v1('PROXY UNKNOWN'));
        await raw.whenClosed();
        await waitUntil(() => errors.length === 1, 'the rejection');
        expect(errors[0]?.error.code).to.equal('ERR_PROXY_PROTOCOL_UNTRUSTED');
        expect(served).to.have.length(0);
        await waitUntil(() => listener.stats().active === 0, 'the connection to be released');
        expect(listener.stats()).to.deep.include({ leaked: 0, proxyProtocol: { invalid: 0, untrusted: 1, healthChecks: 0 } });
      });
    });
  }
});

describe('PROXY protocol options', function () {
  it('proxyProtocol needs trustedProxies; trustedProxies needs proxyProtocol; modes are v1, v2, any', function () {
    const bad: Array<Record<string, unknown>> = [
      { proxyProtocol: 'v1' },
      { proxyProtocol: 'v1', trustedProxies: [] },
      { proxyProtocol: 'v3', trustedProxies: LOOPBACK },
      { proxyProtocol: true, trustedProxies: LOOPBACK },
      { trustedProxies: LOOPBACK },
      { proxyProtocol: 'any', trustedProxies: ['localhost'] },
    ];
    for (const options of bad) {
      expect(() => createListener({ port: 0, credential, ...options }, greet('x')), JSON.stringify(options)).to.throw().with.property('code', 'ERR_INVALID_OPTION');
      expect(() => new TCPListener({ port: 0, ...options }, () => undefined), JSON.stringify(options)).to.throw().with.property('code', 'ERR_INVALID_OPTION');
    }
  });
});
