// One trial: a fresh server for one contender, the load generator against it, and the
// figures of one round of a scenario (throughput, latency at an offered rate, or memory and
// setup CPU of held connections). A trial that throws is a failed trial, not a failed run.
import { setTimeout as sleep } from 'node:timers/promises';
import { LineChannel } from './proc.js';
import type { Message } from './proc.js';
import type { ContenderId, ScenarioDef, TrialResult } from './model.js';
import { ask, certArgs, interference, loadgenArgs, loadgenTrouble, machineCpu, num, raisePriority, runLoadgen, scenarioLoad, startServer, stopServer } from './trial_processes.js';
import type { Context } from './trial_processes.js';

/** Seconds a counted warm-up may take at most (6,000 connections take 6-10 s at one in flight here). */
const WARM_COUNT_LIMIT_S = 240;

/**
 * Warms the server up with the trial's load (`load`: its load generator arguments besides the
 * amount): a count of connections, or a duration. The load generator stops at whichever of
 * --count and --duration comes first, and --duration defaults to 2 s: a count alone would stop
 * after 2 s (about 1,300 connections at one in flight), so the count comes with
 * WARM_COUNT_LIMIT_S, and a counted warm-up that stops short says so in `warnings`.
 */
export async function warmUp(ctx: Context, mode: string, port: number, load: Array<string | number>, warnings: string[]): Promise<void> {
  const t = ctx.timings;
  if (t.warmConnections === 0) {
    await runLoadgen(ctx, loadgenArgs(ctx, mode, port, ['--duration', t.warmSeconds, ...load]), (t.warmSeconds + 30) * 1000);
    return;
  }
  const result = await runLoadgen(ctx, loadgenArgs(ctx, mode, port, ['--count', t.warmConnections, '--duration', WARM_COUNT_LIMIT_S, ...load]), (WARM_COUNT_LIMIT_S + 30) * 1000);
  const completed = num(result, 'completed');
  if (!(completed >= t.warmConnections)) warnings.push(`the warm-up completed ${completed} of ${t.warmConnections} connections`);
}

async function throughputTrial(ctx: Context, scenario: ScenarioDef, contender: ContenderId, round: number): Promise<TrialResult> {
  const t = ctx.timings;
  const server = await startServer(ctx, scenario, contender, 'end');
  const warnings: string[] = [];
  try {
    const common = scenarioLoad(ctx, scenario);
    await warmUp(ctx, scenario.loadgenMode, server.port, common, warnings);
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
    await warmUp(ctx, scenario.loadgenMode, server.port, ['--concurrency', t.concurrency, ...cert], warnings);
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

export async function runTrial(ctx: Context, scenario: ScenarioDef, contender: ContenderId, roundNo: number, rate: number): Promise<TrialResult> {
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

