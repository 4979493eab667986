// Both listeners behind a real HAProxy in TCP mode, on both accept backends: `send-proxy`
// (version 1) and `send-proxy-v2` with `proxy-v2-options authority,ssl`. The client connects
// to HAProxy from 127.0.0.2 and the handler must see that address and the client's port, as
// HAProxy saw them; HAProxy itself (127.0.0.1) is the only trusted proxy.
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import { expect } from 'chai';
import { TCPListener } from '../src/tcp_listener.js';
import type { TCPConnectionInfo } from '../src/tcp_listener.js';
import { createTestPki } from './support/pki.js';
import { freePort, haproxyAvailable, startHaproxy } from './support/haproxy.js';
import { BACKENDS, expectBalanced, greet, killChildren, startListener, tlsConnect, useCleanup, waitUntil, within } from './support/tls_harness.js';
import type { Cleanup } from './support/tls_harness.js';
import { Client } from './support/sockets.js';

const pki = await createTestPki();
const credential = { key: pki.server.key, cert: pki.server.cert };
const CLIENT_ADDRESS = '127.0.0.2';
/** tls.connect passes net options through (Node's types leave localAddress out). */
const fromClient: object = { localAddress: CLIENT_ADDRESS };
const clientCertCn = /CN=([^,\n]+)/.exec(new X509Certificate(pki.clientChain1.certs[0] ?? '').subject)?.[1];

interface Frontends {
  ready: number;
  v1: number;
  v2: number;
  /** HAProxy terminates the client's TLS here and opens its own to the listener. */
  v2Tls: number;
}

async function frontends(): Promise<Frontends> {
  return { ready: await freePort(), v1: await freePort(), v2: await freePort(), v2Tls: await freePort() };
}

/** TCP mode in front of `listenerPort`; the TLS frontend only when the listener speaks TLS. */
function haproxyConfig(ports: Frontends, listenerPort: number, tls: boolean): string {
  const server = `server listener 127.0.0.1:${listenerPort}`;
  return `
global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend ready
  bind 127.0.0.1:${ports.ready}
  tcp-request connection reject
frontend v1
  bind 127.0.0.1:${ports.v1}
  default_backend v1
backend v1
  ${server} send-proxy
frontend v2
  bind 127.0.0.1:${ports.v2}
  default_backend v2
backend v2
  ${server} send-proxy-v2 proxy-v2-options authority,ssl
${
  tls
    ? `frontend v2tls
  bind 127.0.0.1:${ports.v2Tls} ssl crt {dir}/front.pem ca-file {dir}/client-ca.pem verify optional
  unique-id-format %ci-%cp
  default_backend v2tls
backend v2tls
  ${server} ssl verify none sni ssl_fc_sni send-proxy-v2 proxy-v2-options authority,ssl,cert-cn,ssl-cipher,cert-sig,cert-key,crc32c,unique-id
`
    : ''
}`;
}

const files = {
  'front.pem': `${pki.sni.cert}\n${pki.sni.key}\n`,
  'client-ca.pem': `${pki.clientChain1.certs[0] ?? ''}\n`,
};

function tcpConnect(cleanup: Cleanup, port: number): Promise<Client> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: CLIENT_ADDRESS });
  cleanup.add(() => socket.destroy());
  return within(
    new Promise<Client>((resolve, reject) => {
      socket.once('connect', () => resolve(new Client(socket)));
      socket.once('error', reject);
    }),
    'a connection to haproxy',
  );
}

describe('PROXY protocol behind a real HAProxy', function () {
  this.timeout(30_000);
  const cleanup = useCleanup();
  before(function () {
    if (!haproxyAvailable()) this.skip();
  });
  after(killChildren);

  for (const backend of BACKENDS) {
    describe(`TLS listener, ${backend} backend`, function () {
      async function setUp() {
        const running = await startListener(cleanup, { backend, credential, proxyProtocol: 'any', trustedProxies: ['127.0.0.1'] }, greet('hi'));
        const ports = await frontends();
        await startHaproxy(cleanup, haproxyConfig(ports, running.port, true), ports.ready, files);
        return { running, ports };
      }

      it('send-proxy: the handler sees the client as HAProxy saw it', async function () {
        const { running, ports } = await setUp();
        const client = tlsConnect(cleanup, ports.v1, { ...fromClient });
        await client.receive('hi');
        const info = await running.servedCount(1);
        expect(info).to.deep.include({ remoteAddress: CLIENT_ADDRESS, remotePort: client.localPort });
        expect(info.proxy).to.deep.include({ version: 1, command: 'proxy', family: 'IPv4', localAddress: '127.0.0.1', localPort: ports.v1, proxyAddress: '127.0.0.1' });
        expectBalanced(running.listener);
      });

      it('send-proxy-v2 with authority,ssl in pure TCP mode: the client, and an SSL TLV saying HAProxy saw no TLS', async function () {
        const { running, ports } = await setUp();
        const client = tlsConnect(cleanup, ports.v2, { ...fromClient, servername: 'shop.test' });
        await client.receive('hi');
        const info = await running.servedCount(1);
        expect(info).to.deep.include({ remoteAddress: CLIENT_ADDRESS, remotePort: client.localPort, servername: 'shop.test' });
        expect(info.proxy).to.deep.include({ version: 2, command: 'proxy', family: 'IPv4', localPort: ports.v2 });
        // HAProxy in TCP mode does not read the client's TLS: no authority, and the SSL TLV
        // it always sends with `ssl` says the client's connection was not TLS to it.
        expect(info.proxy?.tlvs.authority).to.equal(undefined);
        expect(info.proxy?.tlvs.ssl).to.deep.include({ ssl: false, certInConnection: false, certInSession: false });
      });

      it('send-proxy-v2 where HAProxy terminates TLS: the SNI as authority, the client’s TLS and certificate in the SSL TLV, unique id, CRC32C', async function () {
        const { running, ports } = await setUp();
        const client = tlsConnect(cleanup, ports.v2Tls, {
          ...fromClient,
          servername: 'shop.test',
          key: pki.clientChain1.key,
          cert: pki.clientChain1.chainPem,
          minVersion: 'TLSv1.3',
        });
        await client.receive('hi');
        const info = await running.servedCount(1);
        expect(info).to.deep.include({ remoteAddress: CLIENT_ADDRESS, remotePort: client.localPort });
        expect(info.proxy?.tlvs.authority).to.equal('shop.test');
        const tlvs = info.proxy?.tlvs;
        expect(tlvs?.ssl).to.deep.include({
          ssl: true,
          certInConnection: true,
          verify: 0,
          version: 'TLSv1.3',
          commonName: clientCertCn,
          keyAlgorithm: 'EC256',
          signatureAlgorithm: 'ecdsa-with-SHA256',
        });
        expect(tlvs?.ssl?.cipher).to.match(/^TLS_/);
        expect(tlvs?.uniqueId?.toString()).to.equal(`${CLIENT_ADDRESS}-${client.localPort}`);
        // HAProxy's own CRC32C, which the parser checked (a mismatch fails the connection).
        expect(tlvs?.tlvs.map((tlv) => tlv.type)).to.include(0x03);
      });

      it('a client that skips HAProxy is not trusted', async function () {
        const { running } = await setUp();
        const direct = tlsConnect(cleanup, running.port, { ...fromClient });
        await direct.whenClosed();
        const { error, info } = await running.nextClientError();
        expect(error.code).to.equal('ERR_PROXY_PROTOCOL_UNTRUSTED');
        expect(info.remoteAddress).to.equal(CLIENT_ADDRESS);
        await waitUntil(() => running.listener.stats().active === 0, 'the connection to be released');
        expect(running.listener.stats().proxyProtocol.untrusted).to.equal(1);
      });
    });

    describe(`TCP listener, ${backend} backend`, function () {
      for (const version of ['v1', 'v2'] as const) {
        it(`send-proxy${version === 'v2' ? '-v2' : ''}: the handler sees the client as HAProxy saw it, and its bytes`, async function () {
          const served: TCPConnectionInfo[] = [];
          const listener = new TCPListener({ port: 0, host: '127.0.0.1', backend, proxyProtocol: version, trustedProxies: ['127.0.0.1'] }, (socket, info) => {
            served.push(info);
            socket.on('data', (chunk: Buffer) => socket.write(chunk));
          });
          cleanup.add(() => listener.close());
          const { port } = await within(listener.listen(), 'the listener');
          const ports = await frontends();
          await startHaproxy(cleanup, haproxyConfig(ports, port, false), ports.ready);
          const client = await tcpConnect(cleanup, version === 'v1' ? ports.v1 : ports.v2);
          client.socket.write('ping\n');
          expect(await client.line()).to.equal('ping');
          expect(served[0]).to.deep.include({ remoteAddress: CLIENT_ADDRESS, remotePort: client.socket.localPort });
          expect(served[0]?.proxy).to.deep.include({ version: version === 'v1' ? 1 : 2, command: 'proxy' });
        });
      }
    });
  }
});

describe("HAProxy's check-send-proxy health checks are counted as health checks, not failed handshakes", function () {
  this.timeout(30_000);
  const cleanup = useCleanup();
  before(function () {
    if (!haproxyAvailable()) this.skip();
  });
  after(killChildren);

  for (const backend of BACKENDS) {
    it(`the definition (${backend} backend): a header then a close is a health check; a header, one TLS byte, then a close is a failure`, async function () {
      const running = await startListener(cleanup, { backend, credential, proxyProtocol: 'any', trustedProxies: ['127.0.0.1'] }, greet('hi'));
      const header = 'PROXY TCP4 192.0.2.1 192.0.2.2 1234 443\r\n';
      for (const [sent, reset] of [[header, false], [header, true], [`${header}\x16`, false]] as const) {
        const socket = net.connect({ host: '127.0.0.1', port: running.port });
        cleanup.add(() => socket.destroy());
        socket.on('error', () => undefined);
        await new Promise((resolve) => socket.once('connect', resolve));
        socket.write(sent);
        if (reset) setTimeout(() => socket.resetAndDestroy(), 50);
        else socket.end();
        await new Promise((resolve) => socket.once('close', resolve));
      }
      await waitUntil(() => running.listener.stats().active === 0 && running.clientErrors.length >= 1, 'the three connections to end');
      const stats = running.listener.stats();
      expect(stats.proxyProtocol.healthChecks).to.equal(2);
      expect(stats.handshakes.failed).to.equal(1);
      expect(running.clientErrors).to.have.length(1);
    });
  }

  for (const version of ['v1', 'v2'] as const) {
    it(`send-proxy${version === 'v2' ? '-v2' : ''} with check-send-proxy: healthChecks counts them, no tlsClientError, and clients still get through`, async function () {
      const running = await startListener(cleanup, { backend: 'native', credential, proxyProtocol: 'any', trustedProxies: ['127.0.0.1'] }, greet('hi'));
      const ready = await freePort();
      const front = await freePort();
      await startHaproxy(
        cleanup,
        `
global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout check 5s
frontend ready
  bind 127.0.0.1:${ready}
  tcp-request connection reject
frontend front
  bind 127.0.0.1:${front}
  default_backend back
backend back
  server listener 127.0.0.1:${running.port} ${version === 'v2' ? 'send-proxy-v2' : 'send-proxy'} check check-send-proxy inter 100
`,
        ready,
      );
      await waitUntil(() => running.listener.stats().proxyProtocol.healthChecks >= 3, 'three health checks', 15_000);
      const client = tlsConnect(cleanup, front, fromClient);
      await client.receive('hi');
      const stats = running.listener.stats();
      expect(stats.handshakes.failed, JSON.stringify(running.clientErrors.map(({ error }) => error.code))).to.equal(0);
      expect(running.clientErrors).to.deep.equal([]);
      expect(stats.handshakes.completed).to.equal(1);
      expect(running.listener.metrics()).to.match(/^native_tls_listener_proxy_protocol_health_checks_total [1-9]\d*$/m);
    });
  }
});
