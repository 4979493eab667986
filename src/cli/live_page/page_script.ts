// The live page's script, run by the browser: it fetches /stats every second, keeps the last
// five minutes of snapshots, and turns the differences between successive snapshots into
// rates, handshake-time percentiles and per-worker rates, drawn as inline SVG. All the work is
// the browser's: the server answers /stats as it does for any client. Plain ES2020 in a string
// (the TypeScript build has no DOM types); the browser test (test/live_page.test.ts) runs it.

/** The per-worker table's columns: a heading and where the value is in a `stats.workers` entry. */
export const WORKER_COLUMNS: ReadonlyArray<[string, string]> = [
  ['worker', 'id'],
  ['thread', 'threadId'],
  ['starts', 'starts'],
  ['accepted', 'accepted'],
  ['active', 'active'],
  ['closed', 'closed'],
  ['queued', 'queued'],
  ['handshakes completed', 'handshakes.completed'],
  ['handshakes failed', 'handshakes.failed'],
  ['handler errors', 'handlerErrors'],
];

export const REFRESH_MS = 1000;

/** Snapshots kept: five minutes at one a second. */
export const HISTORY = 300;

export const PAGE_SCRIPT = `'use strict';
const REFRESH_MS = ${REFRESH_MS};
const HISTORY = ${HISTORY};
/** Rates at a glance: over the last few seconds, steadier than the last second alone. */
const GLANCE = 5;
const WORKER_KEYS = ${JSON.stringify(WORKER_COLUMNS.map(([, key]) => key))};
const samples = [];
const $ = (id) => document.getElementById(id);
const dig = (value, path) => path.split('.').reduce((inner, key) => (inner == null ? undefined : inner[key]), value);
const total = (record) => Object.values(record || {}).reduce((sum, count) => sum + count, 0);
const escape = (text) => String(text).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');

/** Per second between two snapshots; null across a restart (a counter that went down). */
function rate(a, b, read) {
  const seconds = (b.t - a.t) / 1000;
  const delta = read(b.s) - read(a.s);
  return seconds > 0 && delta >= 0 ? delta / seconds : null;
}

/** The q-quantile (ms) of the setups between two snapshots, interpolated inside its bucket. */
function quantile(a, b, q) {
  const before = a.s.handshakeTime;
  const after = b.s.handshakeTime;
  if (!before || !after) return null;
  const counts = after.counts.map((count, i) => count - (before.counts[i] || 0));
  const all = counts.reduce((sum, count) => sum + count, 0);
  if (!(all > 0)) return null;
  const bounds = after.boundsMs;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] > 0 && seen + counts[i] >= q * all) {
      const low = i > 0 ? bounds[i - 1] : 0;
      const high = i < bounds.length ? bounds[i] : bounds[bounds.length - 1] * 2;
      return low + ((high - low) * (q * all - seen)) / counts[i];
    }
    seen += counts[i];
  }
  return null;
}

/** [time, value] for each snapshot after the first: value(previous, current). */
function series(value) {
  const points = [];
  for (let i = 1; i < samples.length; i++) points.push([samples[i].t, value(samples[i - 1], samples[i])]);
  return points;
}

/** The same over the last GLANCE seconds, for the tiles. */
function glance(value) {
  if (samples.length < 2) return null;
  return value(samples[Math.max(0, samples.length - 1 - GLANCE)], samples[samples.length - 1]);
}

function failureCauses(stats) {
  return Object.keys(stats.setupFailures || {}).sort().map((code) => [code, (s) => (s.setupFailures || {})[code] || 0]);
}

/** What each chart shows, from the snapshots kept now. */
function charts(latest) {
  const perSecond = (read) => (a, b) => rate(a, b, read);
  const gauge = (read) => (_a, b) => read(b.s);
  const list = [
    { id: 'traffic', unit: '/s', lines: [
      ['accepted', perSecond((s) => s.accepted)],
      ['handshakes completed', perSecond((s) => s.handshakes.completed)],
    ] },
    { id: 'failures', unit: '/s', lines: failureCauses(latest).map(([name, read]) => [name, perSecond(read)]) },
    { id: 'open', unit: '', lines: [['active', gauge((s) => s.active)], ['in setup', gauge((s) => s.inSetup)]] },
    { id: 'limits', unit: '/s', lines: [
      ['paused at a limit', perSecond((s) => s.admission.pauses)],
      ['accept paused (errors)', perSecond((s) => s.acceptPauses)],
      ['shed or refused', perSecond((s) => total(s.rejected))],
    ] },
  ];
  if (latest.handshakeTime) {
    list.push({ id: 'latency', unit: ' ms', lines: [['p50', (a, b) => quantile(a, b, 0.5)], ['p99', (a, b) => quantile(a, b, 0.99)]] });
  }
  if (Array.isArray(latest.workers)) {
    list.push({ id: 'workers', unit: '/s', lines: latest.workers.map((worker, index) => [
      'worker ' + worker.id,
      perSecond((s) => (s.workers && s.workers[index] ? s.workers[index].accepted : NaN)),
    ]) });
  }
  return list;
}

const format = (value, unit) => {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  const digits = Math.abs(value) >= 100 || Number.isInteger(value) ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return value.toFixed(digits) + (unit || '');
};

/** A round upper bound for the y axis: 1, 2 or 5 times a power of ten. */
function roundUp(max) {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * power).find((bound) => bound >= max);
}

/** Draws a chart's lines in its SVG and writes its legend and text summary. */
function draw(chart) {
  const figure = $('chart-' + chart.id);
  if (!figure) return;
  figure.hidden = false;
  const svg = figure.querySelector('svg');
  const width = Math.max(200, Math.round(svg.getBoundingClientRect().width) || 320);
  const height = 140;
  const left = 44, right = 6, top = 8, bottom = 18;
  const now = samples[samples.length - 1].t;
  // The whole width for what there is: the last five minutes, or less since the page opened.
  const start = Math.min(now - 10 * REFRESH_MS, Math.max(now - HISTORY * REFRESH_MS, samples[0].t));
  const span = Math.round((now - start) / 1000);
  const lines = chart.lines.map(([name, value]) => ({ name, points: series(value) }));
  const values = lines.flatMap((line) => line.points.map(([, v]) => v)).filter((v) => v !== null && Number.isFinite(v));
  const top_ = roundUp(Math.max(0, ...values));
  const x = (t) => left + ((t - start) / (now - start)) * (width - left - right);
  const y = (v) => top + (1 - v / top_) * (height - top - bottom);
  let body = '';
  for (const fraction of [0, 0.5, 1]) {
    const at = y(top_ * fraction).toFixed(1);
    body += '<line class="grid" x1="' + left + '" x2="' + (width - right) + '" y1="' + at + '" y2="' + at + '"/>';
    body += '<text class="axis" x="' + (left - 4) + '" y="' + at + '" dy="0.35em" text-anchor="end">' + format(top_ * fraction) + '</text>';
  }
  body += '<text class="axis" x="' + left + '" y="' + (height - 4) + '">−' + (span >= 120 ? Math.round(span / 60) + ' min' : span + ' s') + '</text>';
  body += '<text class="axis" x="' + (width - right) + '" y="' + (height - 4) + '" text-anchor="end">now</text>';
  lines.forEach((line, index) => {
    let path = '';
    let pen = 'M';
    for (const [t, v] of line.points) {
      if (v === null || !Number.isFinite(v)) { pen = 'M'; continue; }
      path += pen + x(t).toFixed(1) + ' ' + y(v).toFixed(1);
      pen = 'L';
    }
    body += '<path class="line s' + (index % 6) + '" d="' + path + '"/>';
  });
  svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
  svg.innerHTML = body;
  const legend = [];
  const summary = [];
  lines.forEach((line, index) => {
    const seen = line.points.map(([, v]) => v).filter((v) => v !== null && Number.isFinite(v));
    const current = seen.length > 0 ? seen[seen.length - 1] : null;
    legend.push('<span class="key"><i class="swatch s' + (index % 6) + '"></i>' + escape(line.name) + ' <b>' + format(current, chart.unit) + '</b></span>');
    summary.push(line.name + ': now ' + format(current, chart.unit) +
      (seen.length > 0 ? ', min ' + format(Math.min(...seen), chart.unit) + ', max ' + format(Math.max(...seen), chart.unit) : ''));
  });
  if (lines.length === 0) legend.push('<span class="key">none so far</span>');
  figure.querySelector('.legend').innerHTML = legend.join(' ');
  svg.setAttribute('aria-label', (summary.join('; ') || 'none so far') + ', over the last ' + Math.round((now - samples[0].t) / 1000) + ' s');
  figure.dataset.points = String(Math.max(0, ...lines.map((line) => line.points.filter(([, v]) => v !== null).length)));
}

function tiles(latest) {
  const perSecond = (read) => glance((a, b) => rate(a, b, read));
  const failed = perSecond((s) => s.handshakes.failed + s.handshakes.timedOut);
  const set = (id, text) => { const tile = $(id); if (tile) tile.textContent = text; };
  set('t-accepted', format(perSecond((s) => s.accepted)));
  set('t-handshakes', format(perSecond((s) => s.handshakes.completed)));
  set('t-failed', format(failed));
  set('t-active', format(latest.active));
  set('t-setup', format(latest.inSetup));
  const p50 = glance((a, b) => quantile(a, b, 0.5));
  const p99 = glance((a, b) => quantile(a, b, 0.99));
  set('t-latency', format(p50) + ' / ' + format(p99));
  // With or without workers the listener reports them; a server that does not, hides the tile.
  $('t-latency').parentElement.hidden = !latest.handshakeTime;
  const paused = glance((a, b) => (b.s.admission.pausedMs - a.s.admission.pausedMs) / (b.t - a.t));
  const state = latest.admission.pausedFor
    ? 'paused at ' + latest.admission.pausedFor
    : paused > 0 ? 'paused ' + format(paused * 100) + '% of the time' : 'accepting';
  set('t-state', state);
  set('t-shed', format(perSecond((s) => total(s.rejected))));
  const state_ = $('t-state');
  if (state_) state_.parentElement.classList.toggle('alert', state !== 'accepting');
  const balance = $('t-balance');
  if (balance) balance.parentElement.hidden = !Array.isArray(latest.workers);
  if (Array.isArray(latest.workers) && latest.workers.length > 1) {
    const rates = latest.workers.map((_w, index) => perSecond((s) => (s.workers && s.workers[index] ? s.workers[index].accepted : NaN)) || 0);
    const sum = rates.reduce((a, b) => a + b, 0);
    // 1/n when balanced, 100% when one worker takes everything.
    set('t-balance', sum > 0 ? format((100 * Math.max(...rates)) / sum) + '% of ' + rates.length : 'idle');
  }
}

/** { handshakes: { completed: 1 } } -> [['handshakes.completed', '1']]; arrays in one cell. */
function flatten(value, prefix) {
  if (Array.isArray(value)) return [[prefix, value.join(' ')]];
  if (typeof value !== 'object' || value === null) return [[prefix, String(value)]];
  const rows = Object.entries(value).flatMap(([key, inner]) => flatten(inner, prefix ? prefix + '.' + key : key));
  return rows.length > 0 ? rows : [[prefix, '–']];
}

function rowOf(cells) {
  const row = document.createElement('tr');
  for (const text of cells) {
    const cell = document.createElement('td');
    cell.textContent = text;
    row.append(cell);
  }
  return row;
}

function rawTables(latest) {
  const { workers, ...rest } = latest;
  $('stats').replaceChildren(...flatten(rest, '').map(rowOf));
  const table = $('workers');
  if (Array.isArray(workers)) {
    table.hidden = false;
    table.querySelector('tbody').replaceChildren(...workers.map((worker) => rowOf(WORKER_KEYS.map((key) => String(dig(worker, key) ?? '–')))));
  }
}

async function refresh() {
  try {
    const response = await fetch('/stats', { cache: 'no-store' });
    if (!response.ok) throw new Error('HTTP ' + response.status);
    samples.push({ t: Date.now(), s: await response.json() });
    if (samples.length > HISTORY + 1) samples.shift();
    const latest = samples[samples.length - 1].s;
    for (const chart of charts(latest)) draw(chart);
    tiles(latest);
    rawTables(latest);
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString() + ' · rates at the top: the last ' + GLANCE + ' s; charts: each second';
    document.body.dataset.samples = String(samples.length);
  } catch (error) {
    $('updated').textContent = 'server unreachable: ' + error.message;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
`;
