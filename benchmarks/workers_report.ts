// The multi-core benchmark's results (benchmarks/workers.ts): the trial record, the figures
// and ratios the goals are judged by, and the Markdown both READMEs show. Reported, never
// asserted.
//
// Ratios are taken round by round (contender in round i ÷ the reference in round i, the two
// having run one after the other), then median (min-max), as the single-thread benchmark does.
import { fmt } from './report.js';
import { summarize } from './stats.js';
import type { Summary } from './stats.js';

export type WorkersScenario = 'tls-full-rsa' | 'tls-resume';

export interface WorkersTrial {
  node: string;
  scenario: WorkersScenario;
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

export interface WorkersOptions {
  workers: number;
  rounds: number;
  seconds: number;
  quick: boolean;
}

export interface WorkersResults {
  date: string;
  command: string;
  machine: { cpus: number; model: string; loadavg: number[] };
  options: WorkersOptions;
  trials: WorkersTrial[];
  /** per Node version: the figures the goals are judged by */
  summary: Record<string, WorkersSummary>;
}

export interface WorkersSummary {
  /** handshakes/s, N workers ÷ 1 worker (goal >= 1.4) */
  scaling: Summary | null;
  /** handshakes/s, N workers ÷ node:cluster round-robin with N (goal >= 1.3) */
  versusClusterRr: Summary | null;
  /** handshakes/s, N workers ÷ node:cluster SCHED_NONE with N */
  versusClusterNone: Summary | null;
  /** server CPU per handshake, N workers ÷ 1 worker (goal <= 1.05) */
  cpuPerHandshake: Summary | null;
  /** max ÷ min connections per worker, N workers (goal <= 1.1) */
  balance: Summary | null;
  /** fraction of resumptions accepted across workers (goal 1.0) */
  resumed: Summary | null;
  /** whole-process RSS with N workers ÷ the sum over node:cluster's processes (goal <= 0.6) */
  rssVersusCluster: Summary | null;
  /**
   * What the cores allow with this load generator on the same machine: cores ÷ (server CPU +
   * load generator CPU per handshake), from the N-worker trials; and N workers' handshakes/s as
   * a fraction of it. A machine whose load generator takes most of a core cannot show 1.4x.
   */
  machineCeilingPerSec: Summary | null;
  fractionOfCeiling: Summary | null;
}

type Key = { node: string; scenario: WorkersScenario; contender: string; workers: number };

function pick(trials: WorkersTrial[], key: Key): Map<number, WorkersTrial> {
  const byRound = new Map<number, WorkersTrial>();
  for (const t of trials) {
    if (t.node === key.node && t.scenario === key.scenario && t.contender === key.contender && t.workers === key.workers) byRound.set(t.round, t);
  }
  return byRound;
}

function pairedRatio(a: Map<number, WorkersTrial>, b: Map<number, WorkersTrial>, figure: (t: WorkersTrial) => number): Summary | null {
  const ratios: number[] = [];
  for (const [round, ta] of a) {
    const tb = b.get(round);
    if (tb) ratios.push(figure(ta) / figure(tb));
  }
  return summarize(ratios);
}

export function summarizeWorkers(trials: WorkersTrial[], workers: number, cpus: number): Record<string, WorkersSummary> {
  const out: Record<string, WorkersSummary> = {};
  for (const node of new Set(trials.map((t) => t.node))) {
    const full = (contender: string, n: number): Map<number, WorkersTrial> => pick(trials, { node, scenario: 'tls-full-rsa', contender, workers: n });
    const many = full('workers', workers);
    const one = full('workers', 1);
    const rate = (t: WorkersTrial): number => t.handshakesPerSec;
    const resumedMany = [...pick(trials, { node, scenario: 'tls-resume', contender: 'workers', workers }).values()];
    const ceilings = [...many.values()].map((t) => {
      const loadgenUs = (t.loadgenCpuCores * 1e6) / t.handshakesPerSec;
      return (cpus * 1e6) / (t.serverCpuUsPerHandshake + loadgenUs);
    });
    out[node] = {
      scaling: pairedRatio(many, one, rate),
      versusClusterRr: pairedRatio(many, full('cluster-rr', workers), rate),
      versusClusterNone: pairedRatio(many, full('cluster-none', workers), rate),
      cpuPerHandshake: pairedRatio(many, one, (t) => t.serverCpuUsPerHandshake),
      balance: summarize([...many.values()].map((t) => t.balance)),
      resumed: summarize(resumedMany.map((t) => t.resumedFraction ?? Number.NaN)),
      rssVersusCluster: pairedRatio(many, full('cluster-rr', workers), (t) => t.rssMiB),
      machineCeilingPerSec: summarize(ceilings),
      fractionOfCeiling: summarize([...many.values()].map((t, i) => t.handshakesPerSec / (ceilings[i] ?? Number.NaN))),
    };
  }
  return out;
}

function median(values: number[]): number {
  return summarize(values)?.median ?? Number.NaN;
}

/** Every contender's medians, one row per Node version, scenario, server and worker count. */
export function workersTable(trials: WorkersTrial[]): string {
  const groups = new Map<string, WorkersTrial[]>();
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
    const m = (f: (t: WorkersTrial) => number): number => median(group.map(f));
    const resumed = group[0]?.resumedFraction !== undefined ? `${(m((t) => t.resumedFraction ?? 0) * 100).toFixed(1)}%` : '';
    lines.push(
      `| ${node} | ${scenario} | ${contender} | ${workers} | ${m((t) => t.handshakesPerSec).toFixed(0)} | ${m((t) => t.serverCpuUsPerHandshake).toFixed(0)} | ${m((t) => t.serverCpuCores).toFixed(2)} | ${m((t) => t.loadgenCpuCores).toFixed(2)} | ${m((t) => t.balance).toFixed(2)} | ${m((t) => t.rssMiB).toFixed(0)} | ${resumed} |`,
    );
  }
  return lines.join('\n');
}

function ratio(summary: Summary | null, digits = 2): string {
  if (!summary) return 'n/a';
  const m = summary.median.toFixed(digits);
  return summary.n > 1 ? `${m}x (${summary.min.toFixed(digits)}-${summary.max.toFixed(digits)})` : `${m}x`;
}

function verdict(summary: Summary | null, met: (median: number) => boolean): string {
  return summary ? (met(summary.median) ? 'met' : 'not met') : 'n/a';
}

/** The goals of the multi-core benchmark, one row each, a column per Node version. */
export function workersGoals(results: WorkersResults): string {
  const n = results.options.workers;
  const versions = Object.keys(results.summary);
  const rows: Array<[string, (s: WorkersSummary) => string]> = [
    [`handshakes/s, ${n} workers ÷ 1 worker >= 1.4x`, (s) => `${ratio(s.scaling)}, ${verdict(s.scaling, (m) => m >= 1.4)}`],
    [`handshakes/s, ${n} workers ÷ node:cluster (round-robin, ${n}) >= 1.3x`, (s) => `${ratio(s.versusClusterRr)}, ${verdict(s.versusClusterRr, (m) => m >= 1.3)}`],
    [`handshakes/s, ${n} workers ÷ node:cluster (SCHED_NONE, ${n})`, (s) => ratio(s.versusClusterNone)],
    [`server CPU/handshake, ${n} workers ÷ 1 worker <= 1.05x`, (s) => `${ratio(s.cpuPerHandshake)}, ${verdict(s.cpuPerHandshake, (m) => m <= 1.05)}`],
    [`balance (max ÷ min per worker) <= 1.1`, (s) => `${s.balance ? s.balance.median.toFixed(2) : 'n/a'}, ${verdict(s.balance, (m) => m <= 1.1)}`],
    [`resumption across workers = 100%`, (s) => `${s.resumed ? `${(s.resumed.min * 100).toFixed(1)}%` : 'n/a'}, ${verdict(s.resumed, (m) => m >= 0.9995)}`],
    [`RSS ÷ node:cluster's processes <= 0.6x`, (s) => `${ratio(s.rssVersusCluster)}, ${verdict(s.rssVersusCluster, (m) => m <= 0.6)}`],
    [
      `what ${results.machine.cpus} cores allow with the load generator on them (handshakes/s), and ${n} workers' share of it`,
      (s) => (s.machineCeilingPerSec && s.fractionOfCeiling ? `${fmt(s.machineCeilingPerSec.median)}/s; ${(s.fractionOfCeiling.median * 100).toFixed(0)}%` : 'n/a'),
    ],
  ];
  const lines = [`| Goal | ${versions.map((v) => `Node ${v}`).join(' | ')} |`, `| --- | ${versions.map(() => '---').join(' | ')} |`];
  for (const [text, cell] of rows) lines.push(`| ${text} | ${versions.map((v) => cell(results.summary[v] as WorkersSummary)).join(' | ')} |`);
  return lines.join('\n');
}

/** The section both READMEs show: how it was run, the table, the goals. */
export function renderWorkersSection(results: WorkersResults): string {
  const o = results.options;
  const load = results.machine.loadavg.map((l) => l.toFixed(1)).join(', ');
  return [
    `_Generated by \`${results.command}\` on ${results.date.slice(0, 10)} from \`benchmarks/results/workers.json\`; do not edit by hand._`,
    '',
    `${results.machine.cpus} cores (${results.machine.model}), load average at the end ${load}. RSA-2048 full handshakes and ` +
      `TLS 1.3 resumptions, 32 connections in flight from the C load generator on the same cores, ${o.rounds} alternating ` +
      `round(s) of ${o.seconds} s; medians, ratios round by round, median (min-max).`,
    '',
    workersTable(results.trials),
    '',
    'Goals (reported, never asserted):',
    '',
    workersGoals(results),
  ].join('\n');
}
