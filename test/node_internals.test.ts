// Every Node internal the package relies on has a fallback (src/node_internals.ts): each is
// taken away in turn from a child process (test/fixtures/remove_node_internal.cjs, loaded with
// --require, so worker threads lose it too), and the child's listener still serves a real TLS
// client, with nodeInternals() and a process warning saying which fell back.
import { spawn } from 'node:child_process';
import https from 'node:https';
import tls from 'node:tls';
import { expect } from 'chai';
import { nodeInternals } from '../src/index.js';
import type { NodeInternalName } from '../src/index.js';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import { compiledFixture, sourceFixture } from './support/paths.js';
import { Cleanup } from './support/sockets.js';
import type { InternalsChildConfig, InternalsChildReport } from './fixtures/node_internals_child.js';

const pki: TestPki = await createTestPki();
const ALL: readonly NodeInternalName[] = [
  'tcpHandle',
  'tlsLayerOpen',
  'peernameCache',
  'releaseControl',
  'secureConnecting',
  'ticketKeys',
  'httpConnectionTracking',
  'tlsLayerAlpn',
];

/** Starts the child without `removed`; resolves with its report once it listens. */
function startChild(cleanup: Cleanup, removed: NodeInternalName, config: Partial<InternalsChildConfig> = {}): Promise<InternalsChildReport> {
  const full: InternalsChildConfig = { cert: pki.server.cert, key: pki.server.key, workers: false, ...config };
  const child = spawn(process.execPath, ['--require', sourceFixture('remove_node_internal.cjs'), compiledFixture('node_internals_child'), JSON.stringify(full)], {
    env: { ...process.env, NTL_TEST_REMOVE: removed },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  cleanup.add(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin.end();
      }),
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n') && line !== undefined) resolve(JSON.parse(line) as InternalsChildReport);
    });
    child.once('exit', (code) => reject(new Error(`the child exited with ${code} before listening: ${stderr}`)));
  });
}

/** What a TLS client receives from the child (the greeting). */
function fetchGreeting(port: number, ALPNProtocols?: string[]): Promise<{ text: string }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: pki.ca.cert, ...(ALPNProtocols ? { ALPNProtocols } : {}) });
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve({ text }));
  });
}

function fetchHttps(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = https.get({ port, host: '127.0.0.1', servername: 'sni.test', ca: pki.ca.cert, agent: false, path: '/' }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve(body));
    });
    request.on('error', reject);
  });
}

/** What the report should say: only `removed` fell back. */
function expected(removed: NodeInternalName): Record<NodeInternalName, string> {
  return Object.fromEntries(ALL.map((name) => [name, name === removed ? 'fallback' : 'internal'])) as Record<NodeInternalName, string>;
}

describe('Node internals: each is probed once and has a fallback', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it(`nodeInternals() reports every internal in use on this Node (${process.version})`, function () {
    expect(nodeInternals()).to.deep.equal(Object.fromEntries(ALL.map((name) => [name, 'internal'])));
  });

  for (const removed of ['tcpHandle', 'tlsLayerOpen', 'peernameCache', 'releaseControl', 'secureConnecting'] as const) {
    it(`without ${removed}: a TLS client is served (with its address), and the fallback is reported`, async function () {
      // An idleTimeout makes the listener wrap each descriptor in a net.Socket: the TCP handle's path.
      const report = await startChild(cleanup, removed, removed === 'tcpHandle' ? { idleTimeout: 60_000 } : {});
      expect(report.internals).to.deep.equal(expected(removed));
      expect(report.warnings.join('\n')).to.contain(`Node internal ${removed} is not usable`);
      const { text } = await fetchGreeting(report.port);
      expect(text).to.equal('hello 127.0.0.1');
    });
  }

  it('without tlsLayerOpen, with alpn: a hello queued whole at the accept is held, then served on a net.Socket with its protocol', async function () {
    // The peeker returns the hello with the descriptor still the acceptor's (src/tls/hello_stage.ts
    // openedAtOnce); with no direct TLSSocket, a PeekedHello takes it as if its wait had ended.
    const report = await startChild(cleanup, 'tlsLayerOpen', { alpn: ['h2', 'http/1.1'] });
    expect(report.internals).to.deep.equal(expected('tlsLayerOpen'));
    for (let i = 0; i < 3; i++) expect((await fetchGreeting(report.port, ['http/1.1'])).text).to.equal('hello 127.0.0.1 http/1.1');
    expect((await fetchGreeting(report.port)).text).to.equal('hello 127.0.0.1 none');
  });

  it('without tlsLayerAlpn, with alpn: a hello that comes after the accept is served with its protocol by a socket made once it is in', async function () {
    const report = await startChild(cleanup, 'tlsLayerAlpn', { alpn: ['h2', 'http/1.1'] });
    expect(report.internals).to.deep.equal(expected('tlsLayerAlpn'));
    expect(report.warnings.join('\n')).to.contain('Node internal tlsLayerAlpn is not usable');
    for (let i = 0; i < 3; i++) expect((await fetchGreeting(report.port, ['http/1.1', 'h2'])).text).to.equal('hello 127.0.0.1 http/1.1');
    expect((await fetchGreeting(report.port, ['spdy/3'])).text).to.equal('hello 127.0.0.1 none');
  });

  it('without SecureContext.setTicketKeys(): workers start, rotateTicketKeys() resolves, and TLS clients are served', async function () {
    const report = await startChild(cleanup, 'ticketKeys', { workers: true });
    expect(report.internals).to.deep.equal(expected('ticketKeys'));
    expect(report.warnings.join('\n')).to.contain('Node internal ticketKeys is not usable');
    for (let i = 0; i < 3; i++) expect((await fetchGreeting(report.port)).text).to.match(/^\d+ \d+\n$/);
  });

  it('without _http_server connection tracking: a routed HTTPS request is served, and the fallback is reported', async function () {
    const report = await startChild(cleanup, 'httpConnectionTracking', { http: pki.sni });
    expect(report.internals).to.deep.equal(expected('httpConnectionTracking'));
    expect(await fetchHttps(report.port)).to.equal('ok');
  });
});
