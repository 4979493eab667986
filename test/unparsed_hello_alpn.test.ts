// ALPN for a ClientHello the listener does not parse before OpenSSL reads it: the protocol is
// chosen as for a parsed one, the client's first choice among those offered to the credential
// that serves it. The hello here is a real client's, behind an empty handshake record, which
// OpenSSL accepts and the JS hello reader leaves to OpenSSL; the client finishes its handshake,
// so the protocol is the one the listener really agreed. (The native peeker parses that hello,
// as it parses every hello OpenSSL serves short of tlsfuzzer's 131,000 bytes in 256-byte
// records, which test/support/same_answers.ts sends.)
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import type { ListenerOptions } from '../src/index.js';
import { EMPTY_HANDSHAKE_RECORD } from './support/hello_cases.js';
import { createTestPki } from './support/pki.js';
import { startListener, useCleanup, waitUntil, within } from './support/tls_harness.js';
import type { Cleanup } from './support/tls_harness.js';

const pki = await createTestPki();
const credential = { key: pki.server.key, cert: pki.server.cert };
const sniCredential = { key: pki.sni.key, cert: pki.sni.cert };
const ALPN = ['h2', 'http/1.1'];


const readers: Array<{ label: string; options: Pick<ListenerOptions, 'backend' | 'idleTimeout'> }> = [
  { label: 'read in JS (js backend)', options: { backend: 'js' } },
  { label: 'read in JS (native backend with idleTimeout)', options: { backend: 'native', idleTimeout: 60_000 } },
];

interface Outcome {
  alpn: string | false | undefined;
  error: (Error & { code?: string }) | undefined;
  socket: tls.TLSSocket;
}

/** A tls.connect client on a socket that first sends `prefix`; resolves at its handshake's end. */
async function connect(cleanup: Cleanup, port: number, prefix: Buffer | undefined, options: tls.ConnectionOptions): Promise<Outcome> {
  const raw = net.connect({ host: '127.0.0.1', port });
  cleanup.add(() => raw.destroy());
  await within(new Promise<void>((resolve, reject) => raw.once('connect', resolve).once('error', reject)), 'the TCP connection');
  if (prefix) raw.write(prefix);
  const socket = tls.connect({ socket: raw, rejectUnauthorized: false, ...options });
  cleanup.add(() => socket.destroy());
  return within(
    new Promise<Outcome>((resolve) => {
      socket.once('secureConnect', () => resolve({ alpn: socket.alpnProtocol ?? undefined, error: undefined, socket }));
      socket.once('error', (error) => resolve({ alpn: undefined, error, socket }));
    }),
    'the handshake to end',
  );
}

/** An HTTP/1.1 GET over `socket`; the response's text. */
async function get(socket: tls.TLSSocket): Promise<string> {
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.write('GET / HTTP/1.1\r\nHost: sni.test\r\nConnection: close\r\n\r\n');
  await waitUntil(() => text.includes('\r\n\r\n') && text.endsWith('routed'), () => `the response (so far ${JSON.stringify(text)})`);
  return text;
}

describe('ALPN for a hello the listener leaves unparsed: the client’s first choice among the protocols offered to its credential', function () {
  const cleanup = useCleanup();

  for (const { label, options } of readers) {
    describe(label, function () {
      it('a client that prefers http/1.1 gets http/1.1, as with a parsed hello (OpenSSL alone would pick h2, the server’s first)', async function () {
        const { port, listener } = await startListener(cleanup, { ...options, credential, alpn: ALPN }, (socket) => { socket.end(); });
        const parsed = await connect(cleanup, port, undefined, { ALPNProtocols: ['http/1.1', 'h2'] });
        expect(parsed.alpn, 'a parsed hello').to.equal('http/1.1');
        const unparsed = await connect(cleanup, port, EMPTY_HANDSHAKE_RECORD, { ALPNProtocols: ['http/1.1', 'h2'] });
        expect(unparsed.error, 'the unparsed hello’s handshake').to.equal(undefined);
        expect(unparsed.alpn, 'an unparsed hello').to.equal('http/1.1');
        await waitUntil(() => listener.stats().closed === 2, 'both connections to be counted closed');
      });

      it('an SNI client routed to an HTTP/1 server is offered what the route speaks: http/1.1, never h2, and its request is answered', async function () {
        // An http.Server speaks HTTP/1 only: the route offers SNI clients http/1.1 alone.
        const route = http.createServer((_request, response) => response.end('routed'));
        const { port } = await startListener(cleanup, { ...options, credential, sniCredential, alpn: ALPN, http: route }, (socket) => { socket.end(); });
        const client = await connect(cleanup, port, EMPTY_HANDSHAKE_RECORD, { servername: 'sni.test', ALPNProtocols: ['h2', 'http/1.1'] });
        expect(client.error, 'the handshake').to.equal(undefined);
        expect(client.alpn).to.equal('http/1.1');
        const response = await get(client.socket);
        expect(response).to.match(/^HTTP\/1\.1 200 /);
      });

      it('no protocol in common: OpenSSL’s no_application_protocol alert, as from tls.createServer (a parsed hello is served without ALPN)', async function () {
        const { port, nextClientError } = await startListener(cleanup, { ...options, credential, alpn: ALPN }, (socket) => { socket.end(); });
        const parsed = await connect(cleanup, port, undefined, { ALPNProtocols: ['spdy/3'] });
        expect(parsed.error, 'a parsed hello').to.equal(undefined);
        expect(parsed.alpn).to.equal(false);
        const unparsed = await connect(cleanup, port, EMPTY_HANDSHAKE_RECORD, { ALPNProtocols: ['spdy/3'] });
        expect(unparsed.error?.code).to.equal('ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL');
        const { error } = await nextClientError();
        expect(error.code).to.equal('ERR_SSL_NO_APPLICATION_PROTOCOL');
      });
    });
  }
});
