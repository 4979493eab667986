// Certificate reload under load: how many handshakes fail while the server swaps its
// certificate, and how long after SIGHUP new connections get the new one.
//
//   node dist/benchmarks/reload.js [--backend native|js] [--load 0.8] [--seconds 8]
//
// A server process (this file with --serve) runs a TLS listener whose handler ends each
// connection with one byte, and reloads its certificate files on SIGHUP through the CLI's own
// CertificateReloader. The load generator first finds the server's capacity (closed loop,
// full TLS 1.3 handshakes), then opens connections at --load of it (open loop) while, halfway,
// the files are replaced and SIGHUP sent; a probe connects every 5 ms until it is given the
// new certificate. Prints one JSON line.
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import tls from 'node:tls';
import { createListener, loadFingerprint, loadServerCredential } from '../src/index.js';
import type { BackendKind } from '../src/index.js';
import { CertificateReloader } from '../src/cli/certificate_reload.js';
import { createCliLog } from '../src/cli/log.js';
import { ensureBinaries } from './build.js';
import { makeCertificates } from './certs.js';

function flag(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

async function serve(): Promise<void> {
  const files = { certificateFile: flag('cert', ''), privateKeyFile: flag('key', '') };
  const listener = createListener(
    { host: '127.0.0.1', port: 0, backlog: 1024, backend: flag('backend', 'native') as BackendKind, credential: loadServerCredential(files) },
    (socket) => {
      socket.on('error', () => {});
      socket.end('x');
    },
  );
  listener.on('tlsClientError', () => {});
  const { port } = await listener.listen();
  const reloader = new CertificateReloader(
    listener,
    {
      credential: loadServerCredential(files),
      trustFile: files.certificateFile,
      trustFileIsRoot: false,
      fingerprintOf: 'certificate',
      fingerprint: loadFingerprint(files.certificateFile),
      notes: [],
      files: { credential: files },
    },
    // Log lines for people on stderr; stdout carries this server's JSON reports.
    createCliLog('text', { out: () => {}, err: (text) => void process.stderr.write(text) }),
  );
  process.on('SIGHUP', () => {
    const reloadedAt = performance.timeOrigin + performance.now();
    reloader.reload('SIGHUP');
    process.stdout.write(`${JSON.stringify({ type: 'reloaded', reloadMs: performance.timeOrigin + performance.now() - reloadedAt })}\n`);
  });
  process.once('SIGTERM', () => {
    void listener.close().then(() => {
      process.stdout.write(`${JSON.stringify({ type: 'stats', stats: listener.stats() })}\n`, () => process.exit(0));
    });
  });
  process.stdout.write(`${JSON.stringify({ type: 'ready', port })}\n`);
}

function loadgen(bin: string, args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.once('error', reject);
    child.once('close', () => {
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>);
      } catch (error) {
        reject(error as Error);
      }
    });
  });
}

function servedFingerprint(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    // Read to the server's byte, so the probe is a whole connection and never a failed handshake.
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    socket.once('data', () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256);
      socket.destroy();
    });
    socket.once('error', () => resolve(undefined));
    socket.setTimeout(2000, () => socket.destroy());
  });
}

async function measure(): Promise<void> {
  const backend = flag('backend', 'native');
  const load = Number(flag('load', '0.8'));
  const seconds = Number(flag('seconds', '8'));
  const bins = ensureBinaries();
  const [before, after] = [makeCertificates(), makeCertificates()];
  const served = { cert: path.join(before.dir, 'served.crt'), key: path.join(before.dir, 'served.key') };
  fs.copyFileSync(before.files['ecdsa-p256'].cert, served.cert);
  fs.copyFileSync(before.files['ecdsa-p256'].key, served.key);
  const newFingerprint = new X509Certificate(fs.readFileSync(after.files['ecdsa-p256'].cert)).fingerprint256;

  const server = spawn(process.execPath, [process.argv[1] ?? '', '--serve', '--backend', backend, '--cert', served.cert, '--key', served.key], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const messages: Array<Record<string, unknown>> = [];
  readline.createInterface({ input: server.stdout }).on('line', (line) => messages.push(JSON.parse(line) as Record<string, unknown>));
  const waitFor = async (type: string): Promise<Record<string, unknown>> => {
    for (let i = 0; i < 2000; i++) {
      const found = messages.find((message) => message.type === type);
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error(`the server did not send ${type}`);
  };
  const port = Number((await waitFor('ready')).port);

  const capacityRun = await loadgen(bins.loadgen, ['tls-full', '--port', String(port), '--concurrency', '32', '--duration', '3']);
  const capacity = Number(capacityRun.conns_per_s);
  const rate = Math.round(capacity * load);
  const underLoad = loadgen(bins.loadgen, ['latency', '--tls', '--port', String(port), '--rate', String(rate), '--max-inflight', '512', '--duration', String(seconds)]);

  await new Promise((resolve) => setTimeout(resolve, (seconds * 1000) / 2));
  // Replaced as deployment tools do: new files renamed over the old.
  fs.copyFileSync(after.files['ecdsa-p256'].key, `${served.key}.new`);
  fs.copyFileSync(after.files['ecdsa-p256'].cert, `${served.cert}.new`);
  fs.renameSync(`${served.key}.new`, served.key);
  fs.renameSync(`${served.cert}.new`, served.cert);
  const signalledAt = performance.now();
  server.kill('SIGHUP');
  let newCertificateAfterMs: number | null = null;
  while (performance.now() - signalledAt < 5000) {
    if ((await servedFingerprint(port)) === newFingerprint) {
      newCertificateAfterMs = performance.now() - signalledAt;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const loaded = await underLoad;
  server.kill('SIGTERM');
  const stats = (await waitFor('stats')).stats as { handshakes: unknown };
  const reloaded = await waitFor('reloaded');
  before.cleanup();
  after.cleanup();
  const cpus = execFileSync('nproc', { encoding: 'utf8' }).trim();
  process.stdout.write(
    `${JSON.stringify({
      backend,
      cpus,
      capacityConnsPerS: Math.round(capacity),
      rate,
      offered: loaded.started,
      completed: loaded.completed,
      failedConnections: loaded.errors,
      errorKinds: loaded.error_kinds,
      skipped: loaded.skipped,
      latencyUs: loaded.latency_us,
      serverHandshakes: stats.handshakes,
      reloadInServerMs: Number(reloaded.reloadMs),
      newCertificateAfterMs,
    })}\n`,
  );
}

if (process.argv.includes('--serve')) await serve();
else await measure();
