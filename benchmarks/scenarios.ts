// Every scenario of the plan on one Node binary: rounds of trials, each contender in turn, the
// offered rate of latency scenarios from the measured capacity, and each scenario's summary
// (medians, ratios to the baseline); then the goals met or not.
import { BASELINE, FIGURES, GOALS, SCENARIOS } from './model.js';
import type { ContenderId, ContenderResult, FigureId, GoalResult, NodeRun, ScenarioDef, ScenarioResult, TrialResult } from './model.js';
import { nodeVersions } from './node_provisioning.js';
import { ORDER } from './options.js';
import type { Timings } from './options.js';
import { round, roundSummary, summarize } from './stats.js';
import { waitForQuiet } from './trial_processes.js';
import type { Context } from './trial_processes.js';
import { runTrial } from './trials.js';

export function roundsFor(ctx: Context, scenario: ScenarioDef): number {
  if (ctx.options.rounds !== null) return ctx.options.rounds;
  const t = ctx.timings;
  return scenario.kind === 'throughput' ? t.roundsThroughput : scenario.kind === 'latency' ? t.roundsLatency : t.roundsMemory;
}

/** The warm-up's seconds, for the progress line: a count of connections at a rough rate on 2 cores. */
function warmSeconds(t: Timings, scenario: ScenarioDef, concurrency: number): number {
  if (t.warmConnections === 0) return t.warmSeconds;
  const perSecond = scenario.transport === 'tcp' ? 4000 : concurrency === 1 ? 700 : 1500;
  return t.warmConnections / perSecond;
}

export function estimateSeconds(t: Timings, scenario: ScenarioDef): number {
  const spawn = 0.5;
  if (scenario.kind === 'throughput') return spawn + warmSeconds(t, scenario, scenario.concurrency ?? t.concurrency) + t.measureSeconds + 0.1;
  if (scenario.kind === 'latency') return spawn + warmSeconds(t, scenario, t.concurrency) + t.latencySeconds + 0.1;
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

/** Capacity for a latency scenario when its throughput scenario was not run: one short trial each. */
async function probeCapacity(ctx: Context, scenario: ScenarioDef): Promise<number> {
  const source = SCENARIOS.find((s) => s.id === scenario.capacityFrom) ?? scenario;
  const probeCtx: Context = { ...ctx, timings: { ...ctx.timings, measureSeconds: ctx.timings.probeSeconds, warmSeconds: 0.2, warmConnections: 0 } };
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

export async function runNode(ctx: Context, label: string, plan: ScenarioDef[], failures: string[]): Promise<NodeRun> {
  const versions = nodeVersions(ctx.nodeBin);
  const run: NodeRun = { execPath: ctx.nodeBin, versions, scenarios: {} };
  // Capacities probed for latency scenarios whose throughput scenario did not run: once per source.
  const probed = new Map<string, number>();
  for (const scenario of plan) {
    const rounds = roundsFor(ctx, scenario);
    // The trivial C server reads no PROXY header.
    const contenders = scenario.proxy === true ? ORDER.filter((contender) => contender !== 'c') : ORDER;
    const settings: ScenarioResult['settings'] = { rounds };
    const t = ctx.timings;
    let rate = 0;
    const warm = t.warmConnections > 0 ? { warmConnections: t.warmConnections } : { warmSeconds: t.warmSeconds };
    if (scenario.kind === 'throughput') Object.assign(settings, { ...warm, measureSeconds: t.measureSeconds, concurrency: scenario.concurrency ?? t.concurrency, loadgenMode: scenario.loadgenMode });
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
      Object.assign(settings, { offeredRate: rate, loadFraction: fraction, capacityBasis: round(capacity), latencySeconds: t.latencySeconds, ...warm });
      if (scenario.maxPendingHandshakes !== undefined) Object.assign(settings, { maxPendingHandshakes: scenario.maxPendingHandshakes });
      if (scenario.maxQueuedConnections !== undefined) Object.assign(settings, { maxQueuedConnections: scenario.maxQueuedConnections });
    }
    if (scenario.deferAccept !== undefined) Object.assign(settings, { deferAccept: scenario.deferAccept });
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

export function evaluateGoals(runs: Record<string, NodeRun>): GoalResult[] {
  const results: GoalResult[] = [];
  for (const [nodeVersion, run] of Object.entries(runs)) {
    for (const goal of GOALS) {
      const ratio = run.scenarios[goal.scenario]?.contenders[goal.contender]?.ratios[goal.figure] ?? null;
      results.push({ ...goal, nodeVersion, ratio, met: ratio ? ratio.median <= goal.target : null });
    }
  }
  return results;
}
