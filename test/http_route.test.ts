// The SNI route to HTTP (`http`) driven by real clients, on both accept backends: each
// accepted form of `http` is served over the protocol ALPN chose (curl --http2, --http1.1,
// --no-alpn), and the routed server's own headersTimeout and requestTimeout hold, as they do
// for a listening https.createServer.
import { createHook } from 'node:async_hooks';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { createTestPki } from './support/pki.js';
import { BACKENDS, greet, run, startListener, tlsConnect, useCleanup, waitUntil, within } from './support/tls_harness.js';
import type { Cleanup, ProcessResult, TlsClient } from './support/tls_harness.js';
import { TLSListener } from '../src/tls/tls_listener.js';
import type { HttpTarget, RequestListener } from '../src/tls/tls_listener.js';

const pki = await createTestPki();
const primary = { key: pki.server.key, cert: pki.server.cert };
const sniCredential = { key: pki.sni.key, cert: pki.sni.cert };

const web: RequestListener = (_request, response) => {
  response.end('web');
};

/** Answers every request with `body`, over HTTP/1 (http, https) or h2 (http2's compat API). */
function answer(body: string): (request: unknown, response: { end(chunk: string): unknown }) => void {
  return (_request, response) => {
    response.end(body);
  };
}

/** Short enough for a test, checked every 100 ms so the check comes soon after the deadline. */
const SLOW_CLIENT_TIMEOUTS = { headersTimeout: 1000, requestTimeout: 1500, connectionsCheckingInterval: 100 } as const;

function listening(cleanup: Cleanup, server: net.Server): Promise<number> {
  cleanup.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return within(
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, () => resolve((server.address() as net.AddressInfo).port));
    }),
    'a reference server to listen',
  );
}

/** A client with SNI that sends the start of a request's headers, then nothing. */
async function slowHeaders(cleanup: Cleanup, port: number): Promise<TlsClient> {
  const client = tlsConnect(cleanup, port, { servername: 'localhost', ALPNProtocols: ['http/1.1'] });
  await client.whenSecure();
  client.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
  return client;
}

describe("HTTP routing: the routed server's headersTimeout and requestTimeout hold", function () {
  const cleanup = useCleanup();

  const forms = [
    {
      form: 'a request listener (built into an http.Server with these options through TlsListenerDependencies)',
      http: (): RequestListener => web,
      dependencies: { http1ServerOptions: SLOW_CLIENT_TIMEOUTS },
    },
    { form: 'an http.Server', http: (): HttpTarget => http.createServer(SLOW_CLIENT_TIMEOUTS, web), dependencies: {} },
    { form: 'an https.Server', http: (): HttpTarget => https.createServer(SLOW_CLIENT_TIMEOUTS, web), dependencies: {} },
    {
      form: 'an Http2SecureServer with allowHTTP1',
      // Node 20 takes no HTTP/1 options here (24 does); the properties are what its checks read.
      http: (): HttpTarget => Object.assign(http2.createSecureServer({ allowHTTP1: true }, answer('web')), SLOW_CLIENT_TIMEOUTS),
      dependencies: {},
    },
  ] as const;

  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      for (const { form, http: target, dependencies } of forms) {
        it(`answers a slow-headers client 408 and closes it, as https.createServer does, for ${form}`, async function () {
          const reference = https.createServer({ ...SLOW_CLIENT_TIMEOUTS, ...sniCredential }, web);
          const referencePort = await listening(cleanup, reference);
          const server = await startListener(cleanup, { backend, credential: primary, sniCredential, http: target() }, greet('protocol\n'), dependencies);
          const [routed, direct] = await Promise.all([slowHeaders(cleanup, server.port), slowHeaders(cleanup, referencePort)]);
          await Promise.all([direct.whenClosed(), routed.whenClosed()]);
          expect(direct.received).to.match(/^HTTP\/1\.1 408 /);
          expect(routed.received).to.match(/^HTTP\/1\.1 408 /);
          await waitUntil(() => server.listener.stats().active === 0, 'the listener to release the routed connection');
        });
      }

      it("checks a given http.Server without emitting 'listening' on it", async function () {
        const httpServer = http.createServer(SLOW_CLIENT_TIMEOUTS, web);
        let listeningEmitted = false;
        httpServer.on('listening', () => {
          listeningEmitted = true;
        });
        const server = await startListener(cleanup, { backend, credential: primary, sniCredential, http: httpServer }, greet('protocol\n'));
        const client = await slowHeaders(cleanup, server.port);
        await client.whenClosed();
        expect(client.received).to.match(/^HTTP\/1\.1 408 /);
        expect(listeningEmitted).to.equal(false);
        expect(httpServer.listening).to.equal(false);
      });

      it('stops the checking timer it started when the listener closes', async function () {
        // A period no other timer in this process uses, to tell the route's timer apart.
        const period = 173;
        const live = new Set<number>();
        const started: number[] = [];
        const hook = createHook({
          init(asyncId, type, _trigger, resource) {
            if (type === 'Timeout' && (resource as { _repeat?: unknown })._repeat === period) {
              started.push(asyncId);
              live.add(asyncId);
            }
          },
          destroy(asyncId) {
            live.delete(asyncId);
          },
        });
        hook.enable();
        cleanup.add(() => hook.disable());
        const httpServer = http.createServer({ ...SLOW_CLIENT_TIMEOUTS, connectionsCheckingInterval: period }, web);
        const server = await startListener(cleanup, { backend, credential: primary, sniCredential, http: httpServer }, greet('protocol\n'));
        const client = await slowHeaders(cleanup, server.port);
        await client.whenClosed();
        expect(started, 'checking timers started').to.have.length(1);
        expect(live.size, 'checking timers running before close').to.equal(1);
        await server.listener.close();
        await waitUntil(() => live.size === 0, 'the checking timer to stop');
      });
    });
  }
});

const CURL_MODES = ['--http2', '--http1.1', '--no-alpn'] as const;
type CurlMode = (typeof CURL_MODES)[number];

/** How curl's request ends: the body, then the status and the HTTP version curl spoke. */
function served(body: string, version: '2' | '1.1'): string {
  return `${body}\n200 ${version}`;
}

/** An Http2SecureServer without allowHTTP1 refuses HTTP/1 itself, with a 403 over HTTP/1.0. */
const REFUSED_BY_HTTP2_SERVER = /Missing ALPN Protocol[^]*\n403 1(\.0)?$/;

const ACCEPTED_FORMS: ReadonlyArray<{ form: string; make: () => HttpTarget; expected: Record<CurlMode, string | RegExp> }> = [
  {
    form: 'a request listener',
    make: () => answer('request listener'),
    expected: { '--http2': served('request listener', '2'), '--http1.1': served('request listener', '1.1'), '--no-alpn': served('request listener', '1.1') },
  },
  {
    form: 'an http.Server',
    make: () => http.createServer(answer('http.Server')),
    expected: { '--http2': served('http.Server', '1.1'), '--http1.1': served('http.Server', '1.1'), '--no-alpn': served('http.Server', '1.1') },
  },
  {
    form: 'an https.Server',
    make: () => https.createServer({}, answer('https.Server')),
    expected: { '--http2': served('https.Server', '1.1'), '--http1.1': served('https.Server', '1.1'), '--no-alpn': served('https.Server', '1.1') },
  },
  {
    form: 'an Http2SecureServer with allowHTTP1',
    make: () => http2.createSecureServer({ allowHTTP1: true }, answer('Http2SecureServer')),
    expected: { '--http2': served('Http2SecureServer', '2'), '--http1.1': served('Http2SecureServer', '1.1'), '--no-alpn': served('Http2SecureServer', '1.1') },
  },
  {
    form: 'an Http2SecureServer without allowHTTP1',
    make: () => http2.createSecureServer({}, answer('Http2SecureServer')),
    expected: { '--http2': served('Http2SecureServer', '2'), '--http1.1': REFUSED_BY_HTTP2_SERVER, '--no-alpn': REFUSED_BY_HTTP2_SERVER },
  },
];

describe('HTTP routing: each form of `http` is served over the protocol ALPN chose', function () {
  const cleanup = useCleanup();
  let caFile = '';
  before(async function () {
    const dir = await mkdtemp(join(tmpdir(), 'ntl-http-route-'));
    caFile = join(dir, 'ca.pem');
    await writeFile(caFile, pki.ca.cert);
  });
  after(async function () {
    if (caFile !== '') await rm(join(caFile, '..'), { recursive: true, force: true });
  });

  function curl(port: number, mode: CurlMode): Promise<ProcessResult> {
    return run(
      cleanup,
      'curl',
      ['-sS', '--max-time', '5', '--cacert', caFile, '--resolve', `localhost:${port}:127.0.0.1`, '-w', '\n%{http_code} %{http_version}', mode, `https://localhost:${port}/`],
      { closeStdin: true, timeoutMs: 10_000 },
    );
  }

  for (const backend of BACKENDS) {
    describe(`${backend} backend`, function () {
      for (const { form, make, expected } of ACCEPTED_FORMS) {
        it(`serves curl --http2, --http1.1 and --no-alpn from ${form}, and a client without SNI from the handler`, async function () {
          const target = make();
          if (target instanceof net.Server) cleanup.add(() => target.close());
          const server = await startListener(cleanup, { backend, credential: primary, sniCredential, http: target, alpn: ['h2', 'http/1.1'] }, greet('protocol\n'));
          for (const mode of CURL_MODES) {
            const result = await curl(server.port, mode);
            const want = expected[mode];
            const outcome = `curl ${mode}: exit ${String(result.code)}, stdout ${JSON.stringify(result.stdout)}, stderr ${result.stderr}`;
            if (typeof want === 'string') expect(result.stdout, outcome).to.equal(want);
            else expect(result.stdout, outcome).to.match(want);
          }
          const client = tlsConnect(cleanup, server.port, { ALPNProtocols: ['h2', 'http/1.1'] });
          await client.receive('protocol\n');
          expect(server.served.map((info) => [info.sniCredentialUsed, info.alpnProtocol])).to.deep.equal([[false, 'h2']]);
        });
      }

      it('negotiates h2 for a route that speaks only h2, even with a client that prefers http/1.1', async function () {
        const target = http2.createSecureServer({}, answer('Http2SecureServer'));
        const server = await startListener(cleanup, { backend, credential: primary, sniCredential, http: target, alpn: ['h2', 'http/1.1'] }, greet('protocol\n'));
        const client = tlsConnect(cleanup, server.port, { servername: 'localhost', ALPNProtocols: ['http/1.1', 'h2'] });
        await client.whenSecure();
        expect(client.socket.alpnProtocol).to.equal('h2');
      });

      it('negotiates http/1.1 for a route that speaks only HTTP/1, even with a client that prefers h2', async function () {
        const target = http.createServer(answer('http.Server'));
        const server = await startListener(cleanup, { backend, credential: primary, sniCredential, http: target, alpn: ['h2', 'http/1.1'] }, greet('protocol\n'));
        const client = tlsConnect(cleanup, server.port, { servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] });
        await client.whenSecure();
        expect(client.socket.alpnProtocol).to.equal('http/1.1');
      });
    });
  }
});

describe('HTTP routing: `http` takes only the forms it can serve', function () {
  const rejected: ReadonlyArray<[string, () => unknown]> = [
    ['a net.Server', () => net.createServer()],
    ['a tls.Server', () => tls.createServer()],
    ['a plain-text http2 server (http2.createServer)', () => http2.createServer()],
    ['an object with emit()', () => ({ emit: () => true })],
    ['a string', () => 'http'],
  ];
  for (const [what, make] of rejected) {
    it(`rejects ${what} with ERR_INVALID_OPTION`, function () {
      const target = make() as HttpTarget;
      expect(() => new TLSListener({ port: 0, credential: primary, sniCredential, http: target }, greet('protocol\n')))
        .to.throw()
        .with.property('code', 'ERR_INVALID_OPTION');
    });
  }
});
