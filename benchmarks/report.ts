// The terminal table and the SVG chart, both made from a results file (BenchResults).
import { BASELINE, CONTENDERS, FIGURES, GOALS, INTERFERENCE_CORES, SCENARIOS } from './model.js';
import type { BenchResults, ContenderId, FigureId, NodeRun, ScenarioResult } from './model.js';
import type { Summary } from './stats.js';

const TABLE_CONTENDERS: readonly ContenderId[] = ['node', 'native', 'js', 'c'];

export function fmt(value: number | undefined, digits = 3): string {
  if (value === undefined || !Number.isFinite(value)) return '-';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(digits >= 3 ? 1 : 0);
  return value.toFixed(digits >= 3 ? 2 : 1);
}

export function fmtRange(summary: Summary | undefined): string {
  if (!summary) return '-';
  if (summary.n <= 1) return fmt(summary.median);
  return `${fmt(summary.median)} [${fmt(summary.min)}-${fmt(summary.max)}]`;
}

export function fmtRatio(summary: Summary | undefined): string {
  if (!summary) return '-';
  const m = `${summary.median.toFixed(2)}x`;
  return summary.n <= 1 ? m : `${m} [${summary.min.toFixed(2)}-${summary.max.toFixed(2)}]`;
}

/** A goal's ratio: two decimals, three when two would hide which side of the target it is on. */
export function fmtGoalRatio(median: number, target: number): string {
  return `${median.toFixed(Math.abs(median - target) < 0.005 ? 3 : 2)}x`;
}

/** How many of a Node run's trials ran next to other work (other CPU above the threshold). */
export function interferenceSummary(run: NodeRun): { trials: number; flagged: number; medianOther: number } {
  const others: number[] = [];
  let trials = 0;
  for (const scenario of Object.values(run.scenarios)) {
    for (const contender of Object.values(scenario.contenders)) {
      for (const trial of contender.trials) {
        if (!trial.ok) continue;
        trials++;
        const other = trial.figures.otherCpuCores;
        if (typeof other === 'number') others.push(other);
      }
    }
  }
  const sorted = others.sort((a, b) => a - b);
  return { trials, flagged: others.filter((o) => o > INTERFERENCE_CORES).length, medianOther: sorted[Math.floor(sorted.length / 2)] ?? 0 };
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

function columnsFor(scenario: ScenarioResult): FigureId[] {
  if (scenario.kind === 'throughput') {
    return scenario.id === 'tls-resume'
      ? ['cpuPerConnUs', 'connsPerSec', 'serverCpuCores', 'loadgenCpuCores', 'otherCpuCores', 'resumedFraction']
      : ['cpuPerConnUs', 'connsPerSec', 'serverCpuCores', 'loadgenCpuCores', 'otherCpuCores'];
  }
  if (scenario.kind === 'latency') {
    const shedding: FigureId[] = scenario.settings.maxQueuedConnections !== undefined ? ['shed', 'shedCpuShare', 'shedCpuPerConnUs'] : [];
    return ['p50Us', 'p99Us', 'p999Us', 'samples', 'refused', 'timedOut', ...shedding, 'cpuPerConnUs', 'achievedRate', 'otherCpuCores'];
  }
  return ['rssPerConnKiB', 'heapPerConnKiB', 'setupCpuPerConnUs'];
}

function renderRows(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => pad(cell, (widths[i] ?? 0) + 2)).join('').trimEnd());
}

export function nodeHeading(version: string, run: NodeRun): string {
  return `Node ${version} (OpenSSL ${run.versions.openssl}, libuv ${run.versions.uv}, V8 ${run.versions.v8})`;
}

export function formatTable(results: BenchResults): string {
  const out: string[] = [];
  const m = results.machine;
  out.push('');
  out.push(`${results.quick ? 'QUICK (smoke) run: too short to quote. ' : ''}Machine: ${m.cpuModel}, ${m.cores} cores, ${m.os}; load generator OpenSSL ${results.loadgen.openssl}`);
  for (const [version, run] of Object.entries(results.runs)) {
    out.push('');
    out.push(nodeHeading(version, run));
    const busy = interferenceSummary(run);
    out.push(`  ${busy.flagged} of ${busy.trials} measured windows had other processes using more than ${INTERFERENCE_CORES} cores (column "other CPU")`);
    for (const def of SCENARIOS) {
      const scenario = run.scenarios[def.id];
      if (!scenario) continue;
      const columns = columnsFor(scenario);
      out.push('');
      const rate = scenario.settings.offeredRate;
      out.push(`  ${scenario.title}${rate !== undefined ? ` at ${String(rate)} conns/s` : ''} (${String(scenario.settings.rounds)} round(s))`);
      const rows: string[][] = [['    contender', ...columns.map((f) => `${FIGURES[f].label} ${FIGURES[f].unit}`), `${FIGURES[scenario.headline].label} / ${BASELINE}`]];
      for (const id of TABLE_CONTENDERS) {
        const c = scenario.contenders[id];
        if (!c) continue;
        const failed = c.trials.filter((t) => !t.ok).length;
        rows.push([
          `    ${CONTENDERS[id].label}${id === 'c' ? ' (ceiling)' : ''}${failed ? ` (${failed} failed)` : ''}`,
          ...columns.map((f) => fmtRange(c.figures[f])),
          id === BASELINE ? '1 (baseline)' : fmtRatio(c.ratios[scenario.headline]),
        ]);
      }
      out.push(...renderRows(rows));
      if (scenario.ceiling?.connsPerSec && scenario.ceiling.fastestNodeContender) {
        const ceiling = scenario.ceiling.connsPerSec.median;
        const fastest = scenario.ceiling.fastestNodeContender;
        out.push(
          `    load generator ceiling: ${fmt(ceiling)} conns/s against the trivial C server (loadgen ${fmt(scenario.ceiling.loadgenCpuCores?.median)} cores); ` +
            `fastest Node contender (${fastest.contender}) ${fmt(fastest.connsPerSec)} conns/s = ${((fastest.connsPerSec / ceiling) * 100).toFixed(0)}% of it`,
        );
      }
    }
  }
  if (results.goals.length > 0) {
    out.push('');
    out.push('Goals (reported, not asserted; median of the pair-by-pair ratios):');
    const rows: string[][] = [];
    for (const goal of GOALS) {
      const cells = [`  ${goal.text}`];
      for (const version of Object.keys(results.runs)) {
        const g = results.goals.find((r) => r.id === goal.id && r.nodeVersion === version);
        cells.push(`Node ${version}: ${g?.ratio ? `${fmtGoalRatio(g.ratio.median, g.target)} ${g.met ? 'met' : 'NOT met'}` : 'n/a'}`);
      }
      rows.push(cells);
    }
    out.push(...renderRows(rows));
  }
  if (results.failures.length > 0) {
    out.push('');
    out.push(`Failures (${results.failures.length}):`);
    for (const f of results.failures) out.push(`  ${f}`);
  }
  return out.join('\n');
}

// ---- SVG ------------------------------------------------------------------------------------

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const COLORS: Record<ContenderId, string> = { node: '#888888', native: '#1f77b4', js: '#ff7f0e', c: '#2ca02c' };

/**
 * A horizontal bar chart: for each scenario, Node version and contender, the median ratio of
 * the scenario's headline figure to the bare-Node baseline, with a min-max whisker. 1.0 is
 * the baseline; for every headline figure lower is better.
 */
export function renderRatiosSvg(results: BenchResults): string {
  const contenders: ContenderId[] = ['native', 'js'];
  const versions = Object.keys(results.runs);
  type Row = { label: string; contender: ContenderId; ratio: Summary | null; goal?: number };
  const groups: { title: string; rows: Row[] }[] = [];
  for (const def of SCENARIOS) {
    const rows: Row[] = [];
    for (const version of versions) {
      const scenario = results.runs[version]?.scenarios[def.id];
      if (!scenario) continue;
      for (const id of contenders) {
        const goal = GOALS.find((g) => g.scenario === def.id && g.contender === id && g.figure === def.headline);
        rows.push({ label: `Node ${version} ${CONTENDERS[id].label}`, contender: id, ratio: scenario.contenders[id]?.ratios[def.headline] ?? null, ...(goal ? { goal: goal.target } : {}) });
      }
    }
    if (rows.length) groups.push({ title: `${def.id}: ${FIGURES[def.headline].label}`, rows });
  }

  const rowH = 18;
  const groupGap = 26;
  const left = 200;
  const plotW = 520;
  const top = 64;
  const maxSeen = Math.max(1.2, ...groups.flatMap((g) => g.rows.map((r) => r.ratio?.max ?? 0)));
  const xMax = Math.min(3, Math.ceil(maxSeen * 1.1 * 4) / 4);
  const x = (v: number): number => left + (Math.min(v, xMax) / xMax) * plotW;
  let height = top;
  for (const g of groups) height += groupGap + g.rows.length * rowH;
  height += 50;
  const width = left + plotW + 140;

  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  const m = results.machine;
  parts.push(`<text x="10" y="20" font-size="15" font-weight="bold">${esc(`native-tls-listener vs bare Node: ratio to baseline (lower is better)${results.quick ? ' (QUICK smoke run)' : ''}`)}</text>`);
  const versionText = versions.map((v) => `Node ${v} (OpenSSL ${results.runs[v]?.versions.openssl ?? '?'}, libuv ${results.runs[v]?.versions.uv ?? '?'})`).join('; ');
  parts.push(`<text x="10" y="38" fill="#444">${esc(`${m.cpuModel}, ${m.cores} cores; ${versionText}`)}</text>`);
  parts.push(`<text x="10" y="54" fill="#444">${esc(`bar: median of pair-by-pair ratios, whisker: min-max; dashed: goal; generated ${results.generatedAt.slice(0, 10)}`)}</text>`);

  // axis
  const axisTop = top;
  const axisBottom = height - 40;
  for (let v = 0; v <= xMax + 1e-9; v += 0.25) {
    const px = x(v);
    const major = Math.abs(v - Math.round(v * 2) / 2) < 1e-9;
    parts.push(`<line x1="${px}" y1="${axisTop}" x2="${px}" y2="${axisBottom}" stroke="${Math.abs(v - 1) < 1e-9 ? '#000' : '#e4e4e4'}" stroke-width="${Math.abs(v - 1) < 1e-9 ? 1.5 : 1}"/>`);
    if (major) parts.push(`<text x="${px}" y="${axisBottom + 16}" text-anchor="middle" fill="#444">${v.toFixed(1)}x</text>`);
  }
  parts.push(`<text x="${x(1) + 4}" y="${axisBottom + 32}" fill="#000">1.0 = bare Node (net/tls.createServer)</text>`);

  let y = top;
  for (const g of groups) {
    y += groupGap;
    parts.push(`<text x="10" y="${y - 7}" font-weight="bold">${esc(g.title)}</text>`);
    for (const row of g.rows) {
      const cy = y + rowH / 2;
      parts.push(`<text x="${left - 8}" y="${cy + 4}" text-anchor="end">${esc(row.label)}</text>`);
      if (row.ratio) {
        const r = row.ratio;
        parts.push(`<rect x="${left}" y="${y + 3}" width="${Math.max(0, x(r.median) - left)}" height="${rowH - 6}" fill="${COLORS[row.contender]}"/>`);
        if (r.n > 1) {
          parts.push(`<line x1="${x(r.min)}" y1="${cy}" x2="${x(r.max)}" y2="${cy}" stroke="#222"/>`);
          parts.push(`<line x1="${x(r.min)}" y1="${cy - 4}" x2="${x(r.min)}" y2="${cy + 4}" stroke="#222"/>`);
          parts.push(`<line x1="${x(r.max)}" y1="${cy - 4}" x2="${x(r.max)}" y2="${cy + 4}" stroke="#222"/>`);
        }
        const clipped = r.median > xMax ? ' (off scale)' : '';
        parts.push(`<text x="${left + plotW + 8}" y="${cy + 4}">${esc(`${r.median.toFixed(2)}x${clipped}`)}</text>`);
      } else {
        parts.push(`<text x="${left + 4}" y="${cy + 4}" fill="#a00">no result</text>`);
      }
      if (row.goal !== undefined) {
        parts.push(`<line x1="${x(row.goal)}" y1="${y + 1}" x2="${x(row.goal)}" y2="${y + rowH - 1}" stroke="#d62728" stroke-width="2" stroke-dasharray="3,2"/>`);
      }
      y += rowH;
    }
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
