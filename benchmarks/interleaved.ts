// Paired short windows: `npm run bench:interleaved -- [--scenario ID[,ID]] [--windows N]
// [--seconds S] [--warm N] [--contenders native,node] [--pin] [--out FILE] [--quick]`.
//
// `npm run bench` starts a fresh server per trial and measures each for 2 s, one contender after
// the other. On a shared 2-core VM the host's own load comes and goes in spells longer than a
// trial (a contender measured in a slow spell costs 30-60% more), so a ratio taken round by
// round spreads by ±10-30% at one connection in flight. Here every contender's server runs
// for the whole scenario, warmed up once, and the load generator takes a short window on each
// in turn: the two windows of a pair are a few seconds apart, so a spell hits both, and the
// median of many pairs moves by a few percent, not tens. It answers "did this change move the
// ratio to Node" (run before and after), next to `npm run bench`, which stays the report (and
// the README's table).
//
// Each window is one throughput trial's measurement (benchmarks/trials.ts): the server's own
// CPU time (process.cpuUsage, between 'mark' and 'report') per completed connection. Its system
// part is kept apart too: a difference there is the kernel's work (system calls, TCP), not JS's.
import { BASELINE } from './model.js';
import type { ContenderId, ScenarioDef } from './model.js';
import { median, round } from './stats.js';
import { resultsFileName, standaloneContext, throughputScenarios, usageExit, writeResults } from './standalone_run.js';
import { ask, loadgenArgs, loadgenTrouble, num, runLoadgen, scenarioLoad, startServer, stopServer } from './trial_processes.js';
import type { Context, ServerHandle } from './trial_processes.js';
import { warmUp } from './trials.js';

interface InterleavedOptions {
  scenarios: ScenarioDef[];
  contenders: ContenderId[];
  windows: number;
  seconds: number;
  warmConnections: number;
  pin: boolean;
  quick: boolean;
  /** The results file's name in benchmarks/results/ (default interleaved.json). */
  out: string | undefined;
}

/** One contender's figures in one scenario: µs of server CPU per connection, window by window. */
interface ContenderWindows {
  contender: ContenderId;
  cpuPerConnUs: number[];
  /** the system (kernel) part of cpuPerConnUs */
  systemPerConnUs: number[];
}

const DEFAULT_SCENARIOS = ['tls-alpn-c1', 'tls-alpn-c8', 'tls-alpn'];

function usage(message: string): never {
  usageExit('usage: npm run bench:interleaved -- [--scenario ID[,ID]] [--windows N] [--seconds S] [--warm N] [--contenders native,node] [--pin] [--out FILE] [--quick]', message);
}

function positive(text: string | undefined, flag: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) usage(`${flag} wants a positive number, not ${String(text)}`);
  return value;
}

function parse(argv: readonly string[]): InterleavedOptions {
  const options: InterleavedOptions = { scenarios: [], contenders: ['native', BASELINE], windows: 15, seconds: 1.5, warmConnections: 6000, pin: false, quick: false, out: undefined };
  let ids = DEFAULT_SCENARIOS;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string | undefined => argv[++i];
    if (arg === '--scenario') ids = (value() ?? '').split(',').filter((id) => id !== '');
    else if (arg === '--windows') options.windows = Math.round(positive(value(), arg));
    else if (arg === '--seconds') options.seconds = positive(value(), arg);
    // At one in flight V8's background threads (compilation and GC) take more per connection for
    // the first ten thousand or so connections: a larger warm-up measures a long-running server.
    else if (arg === '--warm') options.warmConnections = Math.round(positive(value(), arg));
    else if (arg === '--out') options.out = resultsFileName(value(), usage);
    else if (arg === '--contenders') {
      const named = (value() ?? '').split(',').filter((c) => c !== '');
      for (const c of named) if (c !== 'native' && c !== 'js' && c !== 'node') usage(`unknown contender ${c} (native, js, node)`);
      // The baseline is always there: every ratio is to it, window by window.
      options.contenders = [...new Set([...(named as ContenderId[]), BASELINE])];
    } else if (arg === '--pin') options.pin = true;
    else if (arg === '--quick') options.quick = true;
    else usage(`unknown option ${String(arg)}`);
  }
  options.scenarios = throughputScenarios(ids, usage);
  if (options.quick) Object.assign(options, { windows: 2, seconds: 0.3, warmConnections: 200 });
  return options;
}

/** The ratio of each window to the baseline's window of the same pass. */
function pairedRatios(subject: readonly number[], baseline: readonly number[]): number[] {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(subject.length, baseline.length); i++) {
    const a = subject[i] as number;
    const b = baseline[i] as number;
    if (Number.isFinite(a) && Number.isFinite(b) && b > 0) ratios.push(a / b);
  }
  return ratios;
}

/** The quarter points of `values` (the middle half of the pairs lies between them). */
function quartiles(values: readonly number[]): [number, number] {
  const sorted = [...values].sort((a, b) => a - b);
  const q = Math.floor(sorted.length / 4);
  return [sorted[q] ?? Number.NaN, sorted[sorted.length - 1 - q] ?? Number.NaN];
}

async function window(ctx: Context, scenario: ScenarioDef, server: ServerHandle, seconds: number, load: Array<string | number>): Promise<{ cpu: number; system: number }> {
  await ask(server, 'mark');
  const lg = await runLoadgen(ctx, loadgenArgs(ctx, scenario.loadgenMode, server.port, ['--duration', seconds, ...load]), (seconds + 30) * 1000);
  const report = await ask(server, 'report');
  const warnings: string[] = [];
  loadgenTrouble(lg, warnings);
  for (const warning of warnings) process.stderr.write(`  ${scenario.id}: ${warning}\n`);
  const completed = num(lg, 'completed');
  return { cpu: (num(report, 'cpuUserUs') + num(report, 'cpuSystemUs')) / completed, system: num(report, 'cpuSystemUs') / completed };
}

async function runScenario(ctx: Context, options: InterleavedOptions, scenario: ScenarioDef): Promise<ContenderWindows[]> {
  const load = scenarioLoad(ctx, scenario);
  const servers: Array<{ contender: ContenderId; server: ServerHandle }> = [];
  try {
    for (const contender of options.contenders) servers.push({ contender, server: await startServer(ctx, scenario, contender, 'end') });
    // One warm-up per server, as a trial's (ctx.timings.warmConnections).
    for (const { contender, server } of servers) {
      const warnings: string[] = [];
      await warmUp(ctx, scenario.loadgenMode, server.port, load, warnings);
      for (const warning of warnings) process.stderr.write(`  ${scenario.id} ${contender}: ${warning}\n`);
    }
    const figures = servers.map(({ contender }) => ({ contender, cpuPerConnUs: [] as number[], systemPerConnUs: [] as number[] }));
    for (let pass = 0; pass < options.windows; pass++) {
      // The order turns each pass, so no contender always follows the same one.
      for (let k = 0; k < servers.length; k++) {
        const index = (pass + k) % servers.length;
        const { server } = servers[index] as { server: ServerHandle };
        const measured = await window(ctx, scenario, server, options.seconds, load);
        const entry = figures[index] as ContenderWindows;
        entry.cpuPerConnUs.push(measured.cpu);
        entry.systemPerConnUs.push(measured.system);
      }
      process.stderr.write(`\r  ${scenario.id}: ${pass + 1}/${options.windows} passes`);
    }
    process.stderr.write('\n');
    return figures;
  } finally {
    for (const { server } of servers) await stopServer(server);
  }
}

function table(results: Array<{ scenario: ScenarioDef; figures: ContenderWindows[] }>): string {
  const lines = ['| scenario | contender | CPU per connection, median (min-max) | of it system, median | ÷ node, median of pairs | middle half of pairs |', '| --- | --- | --- | --- | --- | --- |'];
  for (const { scenario, figures } of results) {
    const baseline = figures.find((f) => f.contender === BASELINE)?.cpuPerConnUs ?? [];
    for (const { contender, cpuPerConnUs, systemPerConnUs } of figures) {
      const us = cpuPerConnUs.filter(Number.isFinite);
      const cpu = `${median(us).toFixed(0)} µs (${Math.min(...us).toFixed(0)}-${Math.max(...us).toFixed(0)})`;
      const system = `${median(systemPerConnUs.filter(Number.isFinite)).toFixed(0)} µs`;
      if (contender === BASELINE) {
        lines.push(`| ${scenario.id} | ${contender} | ${cpu} | ${system} | | |`);
        continue;
      }
      const ratios = pairedRatios(cpuPerConnUs, baseline);
      const [low, high] = quartiles(ratios);
      lines.push(`| ${scenario.id} | ${contender} | ${cpu} | ${system} | ${median(ratios).toFixed(3)} | ${low.toFixed(3)}-${high.toFixed(3)} (${ratios.length} pairs) |`);
    }
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  const ctx = standaloneContext(options);
  const results: Array<{ scenario: ScenarioDef; figures: ContenderWindows[] }> = [];
  try {
    for (const scenario of options.scenarios) results.push({ scenario, figures: await runScenario(ctx, options, scenario) });
  } finally {
    ctx.certs.cleanup();
  }
  console.log(`\nNode ${process.version}, ${options.windows} passes of ${options.seconds} s windows after ${options.warmConnections} warm-up connections${options.pin ? ', pinned' : ''}\n\n${table(results)}`);
  writeResults(options.out ?? (options.quick ? 'interleaved-quick.json' : 'interleaved.json'), {
    generated: new Date().toISOString(),
    node: process.version,
    windows: options.windows,
    seconds: options.seconds,
    warmConnections: options.warmConnections,
    pinned: options.pin,
    scenarios: results.map(({ scenario, figures }) => ({ id: scenario.id, contenders: figures.map((f) => ({ contender: f.contender, cpuPerConnUs: f.cpuPerConnUs.map((v) => round(v)), systemPerConnUs: f.systemPerConnUs.map((v) => round(v)) })) })),
  });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
