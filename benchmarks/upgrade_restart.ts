// A restart under steady load: the benchmark's `end` server (benchmarks/upgrade_server.ts,
// upgrades by the library API) serves TLS while loadgen opens 2,000 connections/s (open loop,
// `latency` mode: connect, full TLS 1.3 handshake, first byte, EOF) for 10 s, and 3 s in, a
// new process takes the listening socket over (`--upgrade`). The figure that
// matters is loadgen's error count (goal 0: nothing refused, reset or cut short).
//
//   node dist/benchmarks/upgrade_restart.js [--rate 2000] [--duration 10] [--backend native|js]
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBinaries } from './build.js';
import { makeCertificates } from './certs.js';

const server = fileURLToPath(new URL('./upgrade_server.js', import.meta.url));

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index !== -1 && process.argv[index + 1] !== undefined ? (process.argv[index + 1] as string) : fallback;
}

function output(child: ChildProcess, stream: 'stdout' | 'stderr'): () => string {
  let text = '';
  child[stream]?.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return () => text;
}

async function until(test: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const rate = argument('--rate', '2000');
const duration = Number(argument('--duration', '10'));
const backend = argument('--backend', 'native');
/** --baseline: the same load and no upgrade, to tell the server's saturation from the hand-off. */
const baseline = process.argv.includes('--baseline');
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-upgrade-bench-'));
const { loadgen } = ensureBinaries();

const certSet = makeCertificates();
const certs = certSet.files['ecdsa-p256'];
const serverArgs = [server, '--control', path.join(stateDir, 'control.sock'), '--cert', certs.cert, '--key', certs.key, '--backend', backend];
const old = spawn(process.execPath, serverArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
const oldOut = output(old, 'stdout');
const oldErr = output(old, 'stderr');
await until(() => /listening on 127\.0\.0\.1:(\d+)/.test(oldOut()), 'the old process');
const port = (/listening on 127\.0\.0\.1:(\d+)/.exec(oldOut()) as RegExpExecArray)[1] as string;

const loadArgs = ['latency', '--port', port, '--tls', '--cert', certs.cert, '--rate', rate, '--duration', String(duration), '--max-inflight', '2000'];
const load = spawn(loadgen, loadArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
const loadOut = output(load, 'stdout');
const loadDone = new Promise((resolve) => load.once('close', resolve));

await new Promise((resolve) => setTimeout(resolve, 3000));
if (baseline) {
  await loadDone;
  old.kill('SIGTERM');
  await new Promise((resolve) => old.once('close', resolve));
  console.log(`loadgen ${loadArgs.join(' ')} (baseline, no upgrade)`);
  console.log(`process: ${oldOut().trim().split('\n').pop() ?? ''}`);
  console.log(loadOut().trim());
  process.exit(0);
}
const successor = spawn(process.execPath, [...serverArgs, '--upgrade'], { stdio: ['ignore', 'pipe', 'pipe'] });
const newOut = output(successor, 'stdout');
const oldExit = new Promise<number | null>((resolve) => old.once('close', resolve));
await until(() => newOut().includes('listening on'), 'the hand-off');
const oldStatus = await oldExit;
await loadDone;
successor.kill('SIGTERM');
await new Promise((resolve) => successor.once('close', resolve));
fs.rmSync(stateDir, { recursive: true, force: true });
certSet.cleanup();

console.log(`loadgen ${loadArgs.join(' ')}`);
console.log(`old process: exit ${oldStatus}; ${oldOut().trim().split('\n').pop() ?? ''} ${oldErr().trim()}`);
console.log(`new process: ${newOut().trim().split('\n').pop() ?? ''}`);
console.log(loadOut().trim());
