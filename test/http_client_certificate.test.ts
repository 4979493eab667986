// How an HTTP handler of the SNI route reads the client's certificate: `request.socket` is the
// connection's TLSSocket over HTTP/1.1, and HTTP/2's compatibility API forwards the same call
// to the session's socket; getPeerX509Certificate() gives the leaf the listener judged.
import http2 from 'node:http2';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { createTestPki } from './support/pki.js';
import { BACKENDS, startListener, useCleanup, within } from './support/tls_harness.js';

const pki = await createTestPki();
const client = pki.clientChain2;

function subjectOf(request: IncomingMessage | Http2ServerRequest): string {
  const socket = request.socket as unknown as { getPeerX509Certificate(): X509Certificate | undefined };
  return socket.getPeerX509Certificate()?.subject ?? 'anonymous';
}

describe("an HTTP handler reads the client certificate from request.socket", function () {
  const cleanup = useCleanup();

  for (const backend of BACKENDS) {
    it(`HTTP/1.1 and h2, with requestClientCert (${backend} backend)`, async function () {
      const server = await startListener(
        cleanup,
        {
          backend,
          credential: { key: pki.server.key, cert: pki.server.cert },
          sniCredential: { key: pki.sni.key, cert: pki.sni.cert },
          requestClientCert: true,
          alpn: ['h2', 'http/1.1'],
          http: (request, response) => response.end(`hello, ${subjectOf(request)}`),
        },
        (socket) => {
          socket.end();
        },
      );
      const expected = `hello, ${new X509Certificate(client.certs[0] ?? '').subject}`;

      const http1 = await within(
        new Promise<string>((resolve, reject) => {
          const request = https.get(
            // ALPNProtocols reaches tls.connect() through https.get's options.
            { host: '127.0.0.1', port: server.port, servername: 'localhost', rejectUnauthorized: false, key: client.key, cert: client.chainPem, ALPNProtocols: ['http/1.1'] } as https.RequestOptions,
            (response) => {
              let body = '';
              response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve(body));
            },
          );
          request.on('error', reject);
        }),
        'the HTTP/1.1 answer',
      );
      expect(http1).to.equal(expected);

      const session = http2.connect(`https://localhost:${server.port}`, { rejectUnauthorized: false, key: client.key, cert: client.chainPem, host: '127.0.0.1' });
      cleanup.add(() => session.close());
      const h2 = await within(
        new Promise<string>((resolve, reject) => {
          session.on('error', reject);
          const stream = session.request({ ':path': '/' });
          let body = '';
          stream.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve(body)).on('error', reject);
        }),
        'the h2 answer',
      );
      expect(h2).to.equal(expected);
    });
  }
});
