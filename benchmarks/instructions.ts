// Instructions per connection: `npm run bench:instructions -- [--scenario ID[,ID]] [--rounds N]
// [--warm N] [--connections N] [--out FILE] [--quick]`.
//
// CPU time on a shared 2-core VM moves by ±10% between identical servers, so a difference of a
// few percent between this package and Node needs dozens of paired windows to show
// (`npm run bench:interleaved`), and even then the host's spells blur it. This counts instead:
// each server runs under valgrind's callgrind with counting off; after the warm-up,
// `callgrind_control` turns it on for a fixed number of connections, then dumps. The count is
// every instruction the server's process ran in user space, on all its threads (JS, the JIT's
// code, V8's compiler and GC threads, OpenSSL, libuv, this package's addon), divided by the
// connections completed. Two runs of the same server agree to about 0.1-2%.
//
// What it does not count: the kernel (system calls, TCP; about a fifth of a connection's CPU
// time here), and what an instruction costs (cache misses, branch mispredictions). So it says
// whether the package's code does more work than Node's for a connection, not how long it takes:
// the CPU-time benchmarks stay the report.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BASELINE } from './model.js';
import type { ContenderId, ScenarioDef } from './model.js';
import { median } from './stats.js';
import { resultsFileName, standaloneContext, throughputScenarios, usageExit, writeResults } from './standalone_run.js';
import { ask, loadgenArgs, loadgenTrouble, num, runLoadgen, scenarioLoad, startServer, stopServer } from './trial_processes.js';
import type { Context, Launcher } from './trial_processes.js';

interface InstructionOptions {
  scenarios: ScenarioDef[];
  rounds: number;
  warmConnections: number;
  connections: number;
  quick: boolean;
  /** The results file's name in benchmarks/results/ (default instructions.json). */
  out: string | undefined;
}

/** One contender's figures in one scenario: instructions per connection, round by round. */
interface ContenderCounts {
  contender: ContenderId;
  instructionsPerConn: number[];
}

const DEFAULT_SCENARIOS = ['tls-alpn-c1', 'tls-full-ecdsa-c1', 'tls-proxy-c1'];
const CONTENDERS: ContenderId[] = ['native', BASELINE];

function usage(message: string): never {
  usageExit('usage: npm run bench:instructions -- [--scenario ID[,ID]] [--rounds N] [--warm N] [--connections N] [--out FILE] [--quick]', message);
}

function positiveInteger(text: string | undefined, flag: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) usage(`${flag} wants a positive whole number, not ${String(text)}`);
  return value;
}

function parse(argv: readonly string[]): InstructionOptions {
  const options: InstructionOptions = { scenarios: [], rounds: 2, warmConnections: 3000, connections: 3000, quick: false, out: undefined };
  let ids = DEFAULT_SCENARIOS;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string | undefined => argv[++i];
    if (arg === '--scenario') ids = (value() ?? '').split(',').filter((id) => id !== '');
    else if (arg === '--rounds') options.rounds = positiveInteger(value(), arg);
    else if (arg === '--warm') options.warmConnections = positiveInteger(value(), arg);
    else if (arg === '--connections') options.connections = positiveInteger(value(), arg);
    else if (arg === '--out') options.out = resultsFileName(value(), usage);
    else if (arg === '--quick') options.quick = true;
    else usage(`unknown option ${String(arg)}`);
  }
  options.scenarios = throughputScenarios(ids, usage);
  for (const scenario of options.scenarios) if (scenario.transport !== 'tls') usage(`${scenario.id} is not a TLS scenario`);
  if (options.quick) Object.assign(options, { rounds: 1, warmConnections: 100, connections: 30 });
  return options;
}

/** The path of a program on PATH, or null. */
function onPath(program: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, program);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** The sum of the `totals:` lines of the dumps callgrind wrote for `pid` (one per dump). */
function dumpedInstructions(dir: string, pid: number): number {
  let total = 0;
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith(`callgrind.${pid}`)) continue;
    const match = /^totals:\s+(\d+)/m.exec(fs.readFileSync(path.join(dir, name), 'utf8'));
    if (match) total += Number(match[1]);
  }
  return total;
}

/** Tells the callgrind running as `pid` to count, to stop counting, or to write its counts out. */
function control(pid: number, command: string[]): void {
  execFileSync('callgrind_control', [...command, String(pid)], { stdio: 'ignore', timeout: 60_000 });
}

async function count(ctx: Context, options: InstructionOptions, scenario: ScenarioDef, contender: ContenderId, dir: string): Promise<number> {
  const launcher: Launcher = {
    command: 'valgrind',
    // Counting starts off; only the window after the warm-up is counted. One dump per request,
    // all threads together, without per-instruction detail (only the totals are read).
    args: ['--tool=callgrind', '--instr-atstart=no', '--dump-instr=no', '--compress-strings=no', `--callgrind-out-file=${path.join(dir, 'callgrind.%p')}`],
    readyTimeoutMs: 120_000,
  };
  const server = await startServer(ctx, scenario, contender, 'end', launcher);
  const pid = server.channel.child.pid;
  try {
    if (pid === undefined) throw new Error('the server under valgrind has no pid');
    const load = scenarioLoad(ctx, scenario);
    // Under valgrind a connection takes tens of times as long: the limits are the load
    // generator's longest (900 s).
    const warm = await runLoadgen(ctx, loadgenArgs(ctx, scenario.loadgenMode, server.port, ['--count', options.warmConnections, '--duration', 900, ...load]), 960_000);
    loadgenTrouble(warm, []);
    await ask(server, 'mark', 60_000);
    control(pid, ['--instr=on']);
    const lg = await runLoadgen(ctx, loadgenArgs(ctx, scenario.loadgenMode, server.port, ['--count', options.connections, '--duration', 900, ...load]), 960_000);
    control(pid, ['--instr=off']);
    control(pid, ['--dump']);
    const report = await ask(server, 'report', 60_000);
    const warnings: string[] = [];
    loadgenTrouble(lg, warnings);
    const completed = num(lg, 'completed');
    const served = num(report, 'connections');
    if (served !== completed) warnings.push(`server counted ${served} connections, load generator ${completed}`);
    for (const warning of warnings) process.stderr.write(`\n  ${scenario.id} ${contender}: ${warning}\n`);
    const instructions = dumpedInstructions(dir, pid);
    if (!(instructions > 0)) throw new Error(`callgrind wrote no count for the ${contender} server`);
    return instructions / completed;
  } finally {
    await stopServer(server);
  }
}

async function runScenario(ctx: Context, options: InstructionOptions, scenario: ScenarioDef, dir: string): Promise<ContenderCounts[]> {
  const figures = CONTENDERS.map((contender) => ({ contender, instructionsPerConn: [] as number[] }));
  for (let round = 0; round < options.rounds; round++) {
    // The order turns each round, so no contender always runs first.
    for (let k = 0; k < CONTENDERS.length; k++) {
      const index = (round + k) % CONTENDERS.length;
      const entry = figures[index] as ContenderCounts;
      process.stderr.write(`\r  ${scenario.id}: round ${round + 1}/${options.rounds}, ${entry.contender}      `);
      entry.instructionsPerConn.push(await count(ctx, options, scenario, entry.contender, dir));
    }
  }
  process.stderr.write('\n');
  return figures;
}

function table(results: Array<{ scenario: ScenarioDef; figures: ContenderCounts[] }>): string {
  const lines = ['| scenario | contender | instructions per connection, median (min-max) | ÷ node |', '| --- | --- | --- | --- |'];
  for (const { scenario, figures } of results) {
    const baseline = median(figures.find((f) => f.contender === BASELINE)?.instructionsPerConn ?? []);
    for (const { contender, instructionsPerConn } of figures) {
      const mid = median(instructionsPerConn);
      const spread = `${(Math.min(...instructionsPerConn) / 1e6).toFixed(3)}-${(Math.max(...instructionsPerConn) / 1e6).toFixed(3)}`;
      lines.push(`| ${scenario.id} | ${contender} | ${(mid / 1e6).toFixed(3)} M (${spread}) | ${contender === BASELINE ? '' : (mid / baseline).toFixed(3)} |`);
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  for (const tool of ['valgrind', 'callgrind_control']) {
    if (onPath(tool) === null) {
      console.error(`${tool} is not on PATH: install valgrind (Debian: apt-get install valgrind)`);
      process.exit(2);
    }
  }
  const ctx = standaloneContext({ ...options, pin: false });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-callgrind-'));
  const results: Array<{ scenario: ScenarioDef; figures: ContenderCounts[] }> = [];
  try {
    for (const scenario of options.scenarios) results.push({ scenario, figures: await runScenario(ctx, options, scenario, dir) });
  } finally {
    ctx.certs.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nNode ${process.version}, ${options.rounds} rounds of ${options.connections} connections counted after ${options.warmConnections} warm-up connections, under callgrind\n\n${table(results)}`);
  writeResults(options.out ?? (options.quick ? 'instructions-quick.json' : 'instructions.json'), {
    generated: new Date().toISOString(),
    node: process.version,
    rounds: options.rounds,
    warmConnections: options.warmConnections,
    connections: options.connections,
    scenarios: results.map(({ scenario, figures }) => ({ id: scenario.id, contenders: figures.map((f) => ({ contender: f.contender, instructionsPerConn: f.instructionsPerConn.map((v) => Math.round(v)) })) })),
  });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
