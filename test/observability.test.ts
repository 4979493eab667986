// What the listener tells observers: diagnostics_channel messages for each step of a
// connection's life and the listener's close, NODE_DEBUG=native-tls-listener logging, and
// metrics() as valid Prometheus text whose numbers are the ones stats() reports.
import { spawn } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { PROMETHEUS_CONTENT_TYPE } from '../src/index.js';
import type { CodedError, ListenerOptions, ListenerStats, SetupFailureInfo } from '../src/index.js';
import { backendModes, ModeHarness } from './support/listener_modes.js';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import { parsePrometheusText } from './support/registry_prometheus.js';
import type { Family } from './support/registry_prometheus.js';
import { Cleanup, delay, tcpPeer, tlsPeer, waitUntil, within } from './support/registry_support.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const packageEntry = pathToFileURL(path.resolve(here, '..', 'src', 'index.js')).href;
const backends = ['native', 'js'] as const;

const CHANNELS = ['accept', 'accept-retry', 'accept-pause', 'handshake-done', 'handshake-failed', 'connection-close', 'listener-close'] as const;
type ChannelName = (typeof CHANNELS)[number];

let pki: TestPki;
before(async function () {
  this.timeout(60_000);
  pki = await createTestPki();
});

function tlsOptions(backend: 'native' | 'js', extra: Partial<ListenerOptions> = {}): ListenerOptions {
  return { port: 0, host: '127.0.0.1', backend, credential: { cert: pki.server.cert, key: pki.server.key }, ...extra };
}

/** Subscribes to every channel; keeps the messages that come from `owner()` only. */
function subscribeAll(cleanup: Cleanup, owner: () => unknown): Array<{ channel: ChannelName; message: Record<string, unknown> }> {
  const log: Array<{ channel: ChannelName; message: Record<string, unknown> }> = [];
  for (const channel of CHANNELS) {
    const onMessage = (message: unknown): void => {
      const record = message as Record<string, unknown>;
      if (record.listener === owner()) log.push({ channel, message: record });
    };
    diagnosticsChannel.subscribe(`native-tls-listener:${channel}`, onMessage);
    cleanup.add(() => diagnosticsChannel.unsubscribe(`native-tls-listener:${channel}`, onMessage));
  }
  return log;
}

/** Each message as `channel:id` (a failure's id is in its info; listener-close has none). */
function channelsWithIds(log: Array<{ channel: ChannelName; message: Record<string, unknown> }>): string[] {
  return log.map(({ channel, message }) => `${channel}:${String(message.id ?? (message.info as SetupFailureInfo | undefined)?.id ?? '-')}`);
}

describe('diagnostics_channel: accept, handshake-done, handshake-failed, connection-close and listener-close messages', () => {
  for (const { backend, mode, label } of backendModes) {
    describe(label, () => {
      const cleanup = new Cleanup();
      const harness = new ModeHarness(mode);
      afterEach(() => cleanup.run());
      after(() => harness.close());

      it('publishes each step of a served and a failed connection, then the final stats on close', async () => {
        const listener = harness.tls(tlsOptions(backend), () => (socket) => {
          socket.write('hi\n');
          return Promise.resolve();
        });
        // Ids count per worker: with both workers idle, the second connection goes to the other
        // one (ties round-robin), where it is that worker's first.
        const secondId = mode === 'workers' ? 1 : 2;
        cleanup.add(() => listener.close());
        const log = subscribeAll(cleanup, () => listener);
        const { port } = await listener.listen();

        const served = await tlsPeer(port, { ca: pki.ca.cert });
        await served.closedWithin();
        await waitUntil(() => listener.stats().closed === 1, 'the served connection to be counted closed');
        const garbage = await tcpPeer(port);
        cleanup.add(() => garbage.destroy());
        const garbagePort = garbage.socket.localPort;
        garbage.socket.write('GET / HTTP/1.1\r\n\r\n');
        await garbage.closedWithin();
        await waitUntil(() => listener.stats().closed === 2, 'the failed connection to be counted closed');
        await within(listener.close(), 'close()');
        await delay(10);

        const summary = channelsWithIds(log);
        expect(summary).to.deep.equal([
          'accept:1',
          'handshake-done:1',
          'connection-close:1',
          `accept:${secondId}`,
          `handshake-failed:${secondId}`,
          `connection-close:${secondId}`,
          'listener-close:-',
        ]);
        if (mode === 'workers') {
          const workers = log.filter(({ channel }) => channel !== 'listener-close').map(({ message }) => message.worker);
          expect(new Set(workers.slice(0, 3)).size, 'the first connection, one worker').to.equal(1);
          expect(workers[3], 'the second connection, the other worker').to.not.equal(workers[0]);
        }
        const byChannel = (name: ChannelName): Array<Record<string, unknown>> =>
          log.filter(({ channel }) => channel === name).map(({ message }) => message);
        for (const accept of byChannel('accept')) {
          expect(accept.fd, 'the accepted descriptor').to.be.a('number').and.at.least(0);
        }
        expect(byChannel('handshake-done')[0]).to.include({ id: 1, sniCredentialUsed: false });
        const failed = byChannel('handshake-failed')[0] as { error: CodedError; info: SetupFailureInfo };
        expect(failed.error).to.be.instanceOf(Error);
        expect(failed.error.code).to.be.a('string');
        expect(failed.info).to.include({ id: secondId, remoteAddress: '127.0.0.1', remotePort: garbagePort });
        const closeStats = byChannel('listener-close')[0]?.stats as ListenerStats;
        expect(closeStats).to.deep.equal(listener.stats());
        expect(closeStats).to.include({ accepted: 2, closed: 2, active: 0, leaked: 0 });
        expect(closeStats.handshakes).to.deep.equal({ completed: 1, failed: 1, timedOut: 0, aborted: 0 });
      });

      it('a client that leaves during setup: its failure is published, and counted, before its connection is released', async () => {
        // The order stats() readers rely on: with workers, the release reaches the main thread at
        // once and the failure count by another way, so a failure counted after the release was
        // missing from a stats() read in between.
        const listener = harness.tls(tlsOptions(backend), () => () => Promise.resolve());
        cleanup.add(() => listener.close());
        const log = subscribeAll(cleanup, () => listener);
        const { port } = await listener.listen();
        const silent = await tcpPeer(port);
        await waitUntil(() => listener.stats().inSetup === 1, 'the silent client to be in setup');
        silent.destroy();
        await waitUntil(() => listener.stats().closed === 1, 'the silent client to be counted closed');
        expect(listener.stats().setupFailures).to.deep.equal({ ERR_CLIENT_CLOSED: 1 });
        await waitUntil(() => log.some(({ channel }) => channel === 'connection-close'), 'connection-close to be published');
        const summary = channelsWithIds(log);
        expect(summary).to.deep.equal(['accept:1', 'handshake-failed:1', 'connection-close:1']);
      });
    });
  }
});

interface ChildRun {
  code: number | null;
  stdout: string;
  stderr: string;
  pid: number;
}

/** Runs a small script using the package in a child process with the given NODE_DEBUG. */
function runDebugChild(nodeDebug: string | undefined, backend: 'native' | 'js', cleanup: Cleanup): Promise<ChildRun> {
  const script = `
    import net from 'node:net';
    const { createLocalTCPListener } = await import(${JSON.stringify(packageEntry)});
    const listener = createLocalTCPListener({ port: 0, backend: ${JSON.stringify(backend)} }, (socket) => {
      socket.write('hello\\n');
      return new Promise((resolve) => socket.once('close', resolve));
    });
    const { port } = await listener.listen();
    const client = net.connect({ port, host: '127.0.0.1' });
    client.once('data', () => client.resetAndDestroy());
    await new Promise((resolve) => client.once('close', resolve));
    while (listener.stats().closed < 1) await new Promise((resolve) => setTimeout(resolve, 10));
    await listener.close();
  `;
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_DEBUG;
  if (nodeDebug !== undefined) env.NODE_DEBUG = nodeDebug;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<ChildRun>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr, pid: child.pid ?? -1 }));
  });
  cleanup.add(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await done;
  });
  return within(done, 'the NODE_DEBUG child process', 20_000);
}

describe('NODE_DEBUG=native-tls-listener: debug lines on stderr, and none without it', () => {
  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      it('logs listening, the connection error and the final stats, prefixed the util.debuglog way', async function () {
        this.timeout(30_000);
        const run = await runDebugChild('native-tls-listener', backend, cleanup);
        expect(run.code, run.stderr).to.equal(0);
        const prefix = `NATIVE-TLS-LISTENER ${run.pid}: `;
        const lines = run.stderr.split('\n').filter((line) => line.startsWith(prefix)).map((line) => line.slice(prefix.length));
        expect(lines.find((line) => /^listening on 127\.0\.0\.1:\d+ \((native|js) backend\)$/.test(line)), run.stderr).to.include(
          `(${backend} backend)`,
        );
        expect(lines.some((line) => /^connection 1: .*ECONNRESET/.test(line)), `a line for connection 1's reset in:\n${run.stderr}`).to.equal(true);
        const closed = lines.find((line) => line.startsWith('closed: '));
        expect(closed, run.stderr).to.be.a('string');
        expect(JSON.parse((closed ?? '').slice('closed: '.length))).to.include({ accepted: 1, closed: 1, active: 0, leaked: 0 });
      });

      it('prints nothing when NODE_DEBUG does not name it', async function () {
        this.timeout(30_000);
        for (const nodeDebug of [undefined, 'net,tls']) {
          const run = await runDebugChild(nodeDebug, backend, cleanup);
          expect(run.code, run.stderr).to.equal(0);
          expect(run.stderr).to.not.match(/NATIVE-TLS-LISTENER/);
        }
      });
    });
  }
});

function sampleValue(families: Family[], name: string, labels: Record<string, string> = {}): number | undefined {
  // By the sample's own name: a histogram's _bucket, _sum and _count are samples of one family.
  const samples = families.flatMap((family) => family.samples);
  return samples.find((sample) => sample.name === name && JSON.stringify(sample.labels) === JSON.stringify(labels))?.value;
}

type Expected = [string, Record<string, string>, number];

/** A histogram's samples from per-bucket counts: cumulative buckets, `le` in seconds, then _sum and _count. */
function histogramSamples(name: string, histogram: NonNullable<ListenerStats['handshakeTime']>): Expected[] {
  let cumulative = 0;
  const buckets = histogram.counts.map((count, index): Expected => {
    cumulative += count;
    const bound = histogram.boundsMs[index];
    return [`${name}_bucket`, { le: bound === undefined ? '+Inf' : String(bound / 1000) }, cumulative];
  });
  return [...buckets, [`${name}_sum`, {}, histogram.sumMs / 1000], [`${name}_count`, {}, histogram.count]];
}

const PREFIX = 'native_tls_listener_';

/** The statistics as the metric families must carry them. */
function expectedSamples(stats: ListenerStats): Array<[string, Record<string, string>, number]> {
  return [
    ['connections_accepted_total', {}, stats.accepted],
    ['connections_closed_total', {}, stats.closed],
    ['connections_active', {}, stats.active],
    ['connections_in_setup', {}, stats.inSetup],
    ['connections_leaked', {}, stats.leaked],
    ...Object.entries(stats.setupFailures ?? {}).map(([code, count]): Expected => ['setup_failures_total', { code }, count]),
    ...(stats.handshakeTime !== undefined ? histogramSamples('handshake_duration_seconds', stats.handshakeTime) : []),
    ['handshakes_total', { result: 'completed' }, stats.handshakes.completed],
    ['handshakes_total', { result: 'failed' }, stats.handshakes.failed],
    ['handshakes_total', { result: 'timed_out' }, stats.handshakes.timedOut],
    ['handshakes_total', { result: 'aborted' }, stats.handshakes.aborted],
    ['handshakes_by_credential_total', { credential: 'sni' }, stats.sni.sniCredential],
    ['handshakes_by_credential_total', { credential: 'primary' }, stats.sni.primaryCredential],
    ['accept_pauses_total', {}, stats.acceptPauses],
    ['handler_errors_total', {}, stats.handlerErrors],
    ['idle_timeouts_total', {}, stats.idleTimeouts],
    ['proxy_protocol_rejections_total', { reason: 'invalid' }, stats.proxyProtocol.invalid],
    ['proxy_protocol_rejections_total', { reason: 'untrusted' }, stats.proxyProtocol.untrusted],
    ['proxy_protocol_health_checks_total', {}, stats.proxyProtocol.healthChecks],
    ['accept_backpressure_pauses_total', {}, stats.admission.pauses],
    ['accept_backpressure_seconds_total', {}, stats.admission.pausedMs / 1000],
    ...(stats.admission.backlog !== null ? [['accept_backlog', {}, stats.admission.backlog] as [string, Record<string, string>, number]] : []),
    ...Object.entries(stats.rejected).map(([reason, count]): [string, Record<string, string>, number] => [
      'connections_rejected_total',
      { reason },
      count,
    ]),
    ...Object.entries(stats.acceptRetries).map(([code, count]): [string, Record<string, string>, number] => [
      'accept_retries_total',
      { code },
      count,
    ]),
  ];
}

describe('metrics(): valid Prometheus text whose numbers are the ones stats() reports', () => {
  for (const { backend, mode, label } of backendModes) {
    describe(label, () => {
      const cleanup = new Cleanup();
      const harness = new ModeHarness(mode);
      afterEach(() => cleanup.run());
      after(() => harness.close());

      it('after served, SNI, failed, timed-out, rejected, idle and throwing connections', async function () {
        this.timeout(30_000);
        const listener = harness.tls(
          tlsOptions(backend, {
            sniCredential: { cert: pki.sni.cert, key: pki.sni.key },
            requestClientCert: true,
            handshakeTimeout: 300,
            idleTimeout: 800,
          }),
          () => (socket) => {
            socket.setEncoding('utf8');
            return new Promise<void>((resolve, reject) => {
              socket.once('data', (word: string) => {
                if (word === 'throw\n') reject(new Error('this handler fails on purpose'));
                else if (word === 'bye\n') resolve();
              });
              socket.once('close', () => resolve());
            });
          },
        );
        cleanup.add(() => listener.close());
        const { port } = await listener.listen();

        const primary = await tlsPeer(port, { ca: pki.ca.cert });
        primary.socket.write('bye\n');
        await primary.closedWithin();
        const sni = await tlsPeer(port, { ca: pki.ca.cert, servername: 'sni.test' });
        sni.socket.write('bye\n');
        await sni.closedWithin();
        const thrower = await tlsPeer(port, { ca: pki.ca.cert });
        thrower.socket.write('throw\n');
        await thrower.closedWithin();
        const rejected = await tlsPeer(port, { ca: pki.ca.cert, cert: pki.expiredClient.chainPem, key: pki.expiredClient.key });
        await rejected.closedWithin();
        const garbage = await tcpPeer(port);
        garbage.socket.write('\x00\x01garbage');
        await garbage.closedWithin();
        const stalled = await tcpPeer(port);
        await stalled.closedWithin();
        const idle = await tlsPeer(port, { ca: pki.ca.cert });
        await idle.closedWithin();
        await waitUntil(() => listener.stats().closed === 7, () => `every connection to be counted (${JSON.stringify(listener.stats())})`);

        const stats = listener.stats();
        expect(stats).to.deep.include({
          accepted: 7,
          closed: 7,
          active: 0,
          leaked: 0,
          handshakes: { completed: 4, failed: 2, timedOut: 1, aborted: 0 },
          sni: { sniCredential: 1, primaryCredential: 3 },
          handlerErrors: 1,
          idleTimeouts: 1,
          inSetup: 0,
        });
        // The codes tlsClientError carries: ours, or OpenSSL's for what it refused (with workers,
        // from each worker slot's setup book).
        expect(stats.setupFailures).to.deep.equal({ ERR_CLIENT_CERT_REJECTED: 1, ERR_SSL_WRONG_VERSION_NUMBER: 1, ERR_TLS_HANDSHAKE_TIMEOUT: 1 });
        expect(stats.handshakeTime?.count, 'every completed handshake timed').to.equal(4);
        expect(stats.handshakeTime?.counts.reduce((sum, count) => sum + count, 0)).to.equal(4);
        const text = listener.metrics();
        const families = parsePrometheusText(text);
        for (const family of families) {
          expect(family.name, 'every family carries the prefix').to.match(new RegExp(`^${PREFIX}`));
          expect(family.help, `HELP of ${family.name}`).to.be.a('string').and.not.equal('');
          expect(['counter', 'gauge', 'histogram'], `TYPE of ${family.name}`).to.include(family.type);
          if (family.type === 'counter') expect(family.name, 'a counter').to.match(/_total$/);
          else expect(family.name, `a ${family.type}`).to.not.match(/_total$/);
          const names = family.type === 'histogram' ? ['_bucket', '_sum', '_count'].map((suffix) => family.name + suffix) : [family.name];
          for (const sample of family.samples) expect(names).to.include(sample.name);
        }
        const expected = expectedSamples(stats);
        for (const [name, labels, value] of expected) {
          expect(sampleValue(families, PREFIX + name, labels), `${name}${JSON.stringify(labels)}`).to.equal(value);
        }
        // With workers, the per-worker families (label worker) come on top: they add up to the totals.
        const perWorker = families.filter((family) => family.name.startsWith(`${PREFIX}worker_`));
        if (mode === 'workers') {
          const accepted = families.find((family) => family.name === `${PREFIX}worker_connections_accepted_total`);
          expect(accepted?.samples.map((sample) => sample.labels.worker).sort()).to.deep.equal(['0', '1']);
          expect(accepted?.samples.reduce((sum, sample) => sum + sample.value, 0)).to.equal(stats.accepted);
        } else {
          expect(perWorker).to.deep.equal([]);
        }
        const sampleCount = families.filter((family) => !perWorker.includes(family)).reduce((sum, family) => sum + family.samples.length, 0);
        expect(sampleCount, 'samples that stats() does not account for').to.equal(expected.length);
        expect(families.map((family) => family.name)).to.include.members(
          ['connections_accepted_total', 'connections_active', 'connections_leaked', 'accept_retries_total'].map((name) => PREFIX + name),
        );
        expect(PROMETHEUS_CONTENT_TYPE).to.equal('text/plain; version=0.0.4; charset=utf-8');
      });

      it('adds constant labels to every sample, escaping backslash, quote and line feed, and refuses invalid label names', async () => {
        const listener = harness.tls(tlsOptions(backend), () => () => undefined);
        cleanup.add(() => listener.close());
        await listener.listen();
        const labels = { instance: 'a "quoted" \\ back\\slash\nand a new line', job: 'ntl', shard_2: '' };
        const text = listener.metrics(labels);
        expect(text).to.contain('instance="a \\"quoted\\" \\\\ back\\\\slash\\nand a new line"');
        const families = parsePrometheusText(text);
        const samples = families.flatMap((family) => family.samples);
        expect(samples.length).to.be.greaterThan(0);
        for (const sample of samples) expect(sample.labels).to.deep.include(labels);
        expect(sampleValue(families, `${PREFIX}handshakes_total`, { ...labels, result: 'timed_out' })).to.equal(0);
        for (const bad of ['0starts_with_digit', 'has-dash', 'has space', '']) {
          expect(() => listener.metrics({ [bad]: 'x' }), `label name ${JSON.stringify(bad)}`).to.throw(TypeError);
        }
      });

      // No listener here: once per backend is enough.
      if (mode === 'single') {
        it('the reader used here is strict: it rejects what the format forbids', () => {
          const valid = '# HELP a_total Help.\n# TYPE a_total counter\na_total{x="1"} 2\n';
          expect(parsePrometheusText(valid)).to.deep.equal([
            { name: 'a_total', help: 'Help.', type: 'counter', samples: [{ name: 'a_total', labels: { x: '1' }, value: 2 }] },
          ]);
          const invalid: Record<string, string> = {
            'no final line feed': valid.trimEnd(),
            'TYPE after samples': 'a 1\n# TYPE a gauge\n',
            'two TYPE lines': '# TYPE a gauge\n# TYPE a gauge\na 1\n',
            'two HELP lines': '# HELP a x\n# HELP a y\na 1\n',
            'family split': '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="2"} 1\n',
            'unescaped quote': 'a{x="a"b"} 1\n',
            'bad escape': 'a{x="\\t"} 1\n',
            'duplicate label': 'a{x="1",x="2"} 1\n',
            'duplicate sample': 'a{x="1"} 1\na{x="1"} 2\n',
            'bad value': 'a 1,5\n',
            'bad name': '1a 1\n',
            'reserved label': 'a{__x="1"} 1\n',
            'carriage return': 'a 1\r\n',
          };
          for (const [what, text] of Object.entries(invalid)) {
            expect(() => parsePrometheusText(text), what).to.throw();
          }
        });
      }
    });
  }
});
