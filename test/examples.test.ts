// Every program in examples/ (one per README snippet), started as a user starts it and talked
// to by real clients, so that none of them can rot.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { expect } from 'chai';
import type { ListenerStats } from '../src/index.js';
import { repoRoot } from './support/paths.js';
import { writePkiFiles } from './support/pki.js';
import type { PkiFiles } from './support/pki.js';
import { Cleanup, Client, canBind, delay, waitUntil, within } from './support/sockets.js';
import { proxiedTlsConnect, v1 } from './support/proxy_headers.js';

const execFileAsync = promisify(execFile);
const EXAMPLES_DIR = path.join(repoRoot, 'dist', 'examples');
const PROCESS_WAIT_MS = 15_000;

const EXAMPLES = [
  'tls_protocol_server',
  'sni_https_beside_protocol',
  'client_certificates',
  'stats_and_metrics',
  'graceful_shutdown',
  'worker_threads',
  'behind_load_balancer',
] as const;

type ExampleName = (typeof EXAMPLES)[number];

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

class Example {
  stdout = '';
  stderr = '';
  exit: Exit | null = null;
  port = 0;
  readonly exited: Promise<Exit>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
  }

  /** Waits until a line of stdout matches; fails with the output if the example ends first. */
  async waitForLine(pattern: RegExp): Promise<RegExpExecArray> {
    await waitUntil(() => pattern.test(this.stdout) || this.exit !== null, `${pattern} from the example`, PROCESS_WAIT_MS);
    const match = pattern.exec(this.stdout);
    if (!match) throw new Error(`the example ended (${JSON.stringify(this.exit)}) without ${pattern}:\n${this.stdout}\n${this.stderr}`);
    return match;
  }
}

const running = new Set<Example>();
let workDir: string;
let exampleCa: Buffer;
let clients: PkiFiles;

async function startExample(name: ExampleName): Promise<Example> {
  const script = path.join(EXAMPLES_DIR, `${name}.js`);
  const example = new Example(spawn(process.execPath, [script, '0', path.join(workDir, 'example-pki')], { stdio: ['ignore', 'pipe', 'pipe'] }));
  running.add(example);
  const match = await example.waitForLine(/^listening on 127\.0\.0\.1:(\d+)/m);
  example.port = Number(match[1]);
  return example;
}

/** A TLS client that trusts the examples' CA; with an IP address as host it sends no SNI. */
async function tlsClient(port: number, options: tls.ConnectionOptions = {}): Promise<Client> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: exampleCa, ...options });
  await within(
    new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    }),
    `a TLS connection to port ${port}`,
  );
  return new Client(socket);
}

function get(url: string, options: https.RequestOptions = {}): Promise<{ status: number; type: string; body: string }> {
  const client = url.startsWith('https:') ? https : http;
  return within(
    new Promise((resolve, reject) => {
      client
        .get(url, { ...options, agent: false }, (response) => {
          let body = '';
          response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, type: response.headers['content-type'] ?? '', body }));
        })
        .on('error', reject);
    }),
    `GET ${url}`,
  );
}

before(async function () {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-examples-test-'));
  clients = await writePkiFiles(path.join(workDir, 'clients'));
  // The first example creates the PKI they all share; the rest reuse it.
  const first = await startExample('tls_protocol_server');
  exampleCa = fs.readFileSync(path.join(workDir, 'example-pki', 'ca.pem'));
  first.child.kill('SIGKILL');
  await first.exited;
});

afterEach(async function () {
  for (const example of running) {
    if (example.exit === null) example.child.kill('SIGKILL');
    await example.exited;
  }
  running.clear();
});

after(function () {
  fs.rmSync(workDir, { recursive: true, force: true });
});

describe('examples: every example is tested here', function () {
  it('examples/ holds exactly the examples this suite starts', function () {
    const built = fs
      .readdirSync(EXAMPLES_DIR)
      .filter((file) => file.endsWith('.js'))
      .map((file) => file.slice(0, -'.js'.length))
      .sort();
    expect(built).to.deep.equal([...EXAMPLES].sort());
  });
});

describe('examples: a TLS protocol server', function () {
  it('upper-cases each line and ends on bye, over a chain that verifies for 127.0.0.1', async function () {
    const { port } = await startExample('tls_protocol_server');
    const client = await tlsClient(port, { rejectUnauthorized: true });
    client.socket.write('hello\nsecond line\nbye\nnot reached\n');
    await client.whenClosed();
    expect(client.received).to.equal('hello, connection 1\nHELLO\nSECOND LINE\n');
  });

  it('works with the openssl command in its header', async function () {
    const { port } = await startExample('tls_protocol_server');
    const caFile = path.join(workDir, 'example-pki', 'ca.pem');
    const child = spawn('openssl', ['s_client', '-quiet', '-connect', `127.0.0.1:${port}`, '-CAfile', caFile, '-verify_return_error'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stdin.end('openssl\nbye\n');
    const code = await within(new Promise((resolve) => child.once('close', resolve)), 'openssl s_client to finish', PROCESS_WAIT_MS);
    expect(code).to.equal(0);
    expect(output).to.equal('hello, connection 1\nOPENSSL\n');
  });
});

describe('examples: SNI-routed HTTPS beside a protocol', function () {
  it('a client without SNI gets the protocol', async function () {
    const { port } = await startExample('sni_https_beside_protocol');
    const client = await tlsClient(port, { rejectUnauthorized: true });
    await client.whenClosed();
    expect(client.received).to.equal('protocol: hello, client without SNI\n');
  });

  it('a client with SNI gets HTTPS with the localhost certificate', async function () {
    const { port } = await startExample('sni_https_beside_protocol');
    const response = await get(`https://127.0.0.1:${port}/some/path`, { servername: 'localhost', ca: exampleCa, headers: { host: `localhost:${port}` } });
    expect(response.status).to.equal(200);
    expect(response.body).to.equal(`HTTPS for localhost:${port}: you asked for /some/path\n`);
  });

  it('curl gets HTTP/2 when it offers h2 (ALPN)', async function () {
    const { port } = await startExample('sni_https_beside_protocol');
    const { stdout } = await execFileAsync('curl', [
      '-sS',
      '--max-time',
      '10',
      '--http2',
      '--cacert',
      path.join(workDir, 'example-pki', 'ca.pem'),
      '--resolve',
      `localhost:${port}:127.0.0.1`,
      '-w',
      '|%{http_version}',
      `https://localhost:${port}/h2`,
    ]);
    expect(stdout).to.equal(`HTTPS for localhost:${port}: you asked for /h2\n|2`);
  });
});

describe('examples: client certificates', function () {
  it('greets a client by its certificate, and an anonymous client as such', async function () {
    const { port } = await startExample('client_certificates');
    const known = await tlsClient(port, { cert: fs.readFileSync(clients.clientChain2.chain), key: fs.readFileSync(clients.clientChain2.key) });
    await known.whenClosed();
    expect(known.received).to.match(/^hello, CN=client-chain-2, O=native-tls-listener tests \(chain of 2, anchor [0-9A-F:]{95}\)\n$/);
    const anonymous = await tlsClient(port);
    await anonymous.whenClosed();
    expect(anonymous.received).to.equal('hello, anonymous client\n');
  });

  for (const [which, reason] of [
    ['expiredClient', 'expired'],
    ['clientChain5', 'chain_too_long'],
    ['unknownCaClient', 'unknown_ca'],
  ] as const) {
    it(`rejects a bad chain (${reason}) before the handler and reports why`, async function () {
      const example = await startExample('client_certificates');
      const chain = clients[which];
      const rejected = await tlsClient(example.port, { cert: fs.readFileSync(chain.chain), key: fs.readFileSync(chain.key) });
      await rejected.whenClosed();
      expect(rejected.received).to.equal('');
      await example.waitForLine(new RegExp(`^connection 1 rejected: ERR_CLIENT_CERT_REJECTED \\(${reason}\\)`, 'm'));
    });
  }
});

describe('examples: stats and /metrics', function () {
  it('counts the connections, in stats() and in the Prometheus text with its labels', async function () {
    const example = await startExample('stats_and_metrics');
    const metricsUrl = (await example.waitForLine(/^metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)$/m))[1] ?? '';
    for (let i = 0; i < 2; i++) {
      const client = await tlsClient(example.port);
      await client.whenClosed();
      expect(client.received).to.equal('hello\n');
    }
    const statsUrl = metricsUrl.replace(/\/metrics$/, '/stats');
    // A connection is counted closed once its descriptor is released, just after the client sees the close.
    const readStats = async (): Promise<ListenerStats> => JSON.parse((await get(statsUrl)).body) as ListenerStats;
    let stats = await readStats();
    for (const deadline = Date.now() + 5000; stats.closed < 2 && Date.now() < deadline; stats = await readStats()) await delay(20);
    expect(stats).to.include({ accepted: 2, closed: 2, active: 0, leaked: 0 });

    const metrics = await get(metricsUrl);
    expect(metrics.type).to.equal('text/plain; version=0.0.4; charset=utf-8');
    expect(metrics.body).to.match(/^native_tls_listener_connections_accepted_total\{listener="example"\} 2$/m);
    expect(metrics.body).to.match(/^native_tls_listener_connections_leaked\{listener="example"\} 0$/m);
    expect(metrics.body).to.match(/^native_tls_listener_handshakes_total\{listener="example",result="completed"\} 2$/m);
  });
});

describe('examples: graceful shutdown', function () {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: open connections are ended, the final stats show nothing active or leaked, exit 0`, async function () {
      const example = await startExample('graceful_shutdown');
      const client = await tlsClient(example.port);
      client.socket.write('ping\n');
      await waitUntil(() => client.received.endsWith('ping\n'), 'the echo');
      example.child.kill(signal);
      await client.whenClosed();
      expect(client.ended, 'the server ended the connection, not reset it').to.equal(true);
      const exit = await within(example.exited, 'the example to exit', PROCESS_WAIT_MS);
      expect(exit).to.deep.equal({ code: 0, signal: null });
      expect(example.stdout).to.include(`${signal}: closing 1 connection(s)`);
      const closed = /^closed: (.*)$/m.exec(example.stdout)?.[1];
      expect(JSON.parse(closed ?? 'null')).to.include({ accepted: 1, closed: 1, active: 0, leaked: 0 });
      expect(await canBind(example.port), 'the port is free again').to.equal(true);
    });
  }
});

describe('examples: every core, worker threads', function () {
  it('two clients held open are served by two different worker threads; SIGTERM closes with one balanced book', async function () {
    const example = await startExample('worker_threads');
    const first = await tlsClient(example.port, { rejectUnauthorized: true });
    const second = await tlsClient(example.port, { rejectUnauthorized: true });
    const threads = await Promise.all(
      [first, second].map(async (client) => Number(/^hello from worker thread (\d+),/.exec(await client.line())?.[1])),
    );
    expect(new Set(threads).size, `served by ${threads.join(' and ')}`).to.equal(2);
    first.socket.write('shout\n');
    expect(await first.line(1)).to.equal('SHOUT');
    example.child.kill('SIGTERM');
    await Promise.all([first.whenClosed(), second.whenClosed()]);
    await example.waitForLine(/^closed: /m);
    const closed = /^closed: (.*)$/m.exec(example.stdout)?.[1];
    expect(JSON.parse(closed ?? 'null')).to.deep.equal({ accepted: 2, closed: 2, active: 0, leaked: 0, perWorker: [1, 1] });
    expect(example.stdout).to.include('worker 0: online').and.to.include('worker 1: online');
    expect(await within(example.exited, 'the example to exit', PROCESS_WAIT_MS)).to.deep.equal({ code: 0, signal: null });
  });
});

describe('examples: behind a load balancer (PROXY protocol)', function () {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('greets the client the header names, and refuses a client without one', async function () {
    const example = await startExample('behind_load_balancer');
    const proxied = proxiedTlsConnect(cleanup, example.port, v1('PROXY TCP4 203.0.113.7 127.0.0.1 4242 443'), { host: '127.0.0.1', ca: exampleCa, rejectUnauthorized: true });
    await proxied.receive('hello 203.0.113.7:4242 via 127.0.0.1\n');
    const direct = tls.connect({ host: '127.0.0.1', port: example.port, ca: exampleCa });
    cleanup.add(() => direct.destroy());
    direct.on('error', () => undefined);
    await example.waitForLine(/^refused 127\.0\.0\.1: ERR_PROXY_PROTOCOL_INVALID$/m);
  });
});
