// What clients that send SNI get: HTTPS with the listener's statistics. `/` is a page that
// keeps itself current by fetching `/stats` every second (and reloads itself without script),
// `/stats` is the JSON, `/metrics` the Prometheus text. With worker threads the page adds a
// table of the workers' own counts (`stats.workers`), and the statistics may come from another
// thread (a promise).
import type http from 'node:http';
import { PROMETHEUS_CONTENT_TYPE } from '../index.js';
import type { ListenerStats, RequestListener } from '../index.js';

export interface StatsSource {
  readonly backend: string;
  stats(): ListenerStats | Promise<ListenerStats>;
  metrics(): string | Promise<string>;
}

/** The per-worker table's columns: a heading and where the value is in a `stats.workers` entry. */
const WORKER_COLUMNS: ReadonlyArray<[string, string]> = [
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

const REFRESH_MS = 1000;

/** `{ handshakes: { completed: 1 } }` -> `[['handshakes.completed', 1]]`; the page shows rows. */
function flatten(value: unknown, prefix = ''): Array<[string, string]> {
  if (typeof value !== 'object' || value === null) return [[prefix, String(value)]];
  const rows = Object.entries(value).flatMap(([key, inner]) => flatten(inner, prefix ? `${prefix}.${key}` : key));
  return rows.length > 0 ? rows : [[prefix, '-']];
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Every statistic but the per-worker ones, which get a table of their own. */
function listenerRows(stats: ListenerStats): Array<[string, string]> {
  const { workers: _workers, ...rest } = stats as ListenerStats & { workers?: unknown };
  return flatten(rest);
}

/** One row of cells per worker, in WORKER_COLUMNS' order; none without workers. */
function workerRows(stats: ListenerStats): string[][] {
  const workers = (stats as { workers?: unknown }).workers;
  if (!Array.isArray(workers)) return [];
  return workers.map((worker) =>
    WORKER_COLUMNS.map(([, key]) => String(key.split('.').reduce<unknown>((value, part) => (value as Record<string, unknown> | null)?.[part], worker) ?? '-')),
  );
}

// The same as listenerRows and workerRows above, in the browser.
const PAGE_SCRIPT = `
const flatten = (value, prefix = '') => {
  if (typeof value !== 'object' || value === null) return [[prefix, String(value)]];
  const rows = Object.entries(value).flatMap(([key, inner]) => flatten(inner, prefix ? prefix + '.' + key : key));
  return rows.length > 0 ? rows : [[prefix, '-']];
};
const workerColumns = ${JSON.stringify(WORKER_COLUMNS.map(([, key]) => key))};
const body = document.getElementById('stats');
const workersBody = document.getElementById('workers');
const when = document.getElementById('updated');
const rowOf = (cells) => {
  const row = document.createElement('tr');
  for (const text of cells) {
    const cell = document.createElement('td');
    cell.textContent = text;
    row.append(cell);
  }
  return row;
};
async function refresh() {
  try {
    const response = await fetch('/stats', { cache: 'no-store' });
    const { workers, ...stats } = await response.json();
    body.replaceChildren(...flatten(stats).map(rowOf));
    if (workersBody && Array.isArray(workers)) {
      workersBody.replaceChildren(...workers.map((worker) =>
        rowOf(workerColumns.map((key) => String(key.split('.').reduce((value, part) => value?.[part], worker) ?? '-')))));
    }
    when.textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (error) {
    when.textContent = 'server unreachable: ' + error.message;
  }
}
setInterval(refresh, ${REFRESH_MS});
`;

function workersTable(stats: ListenerStats): string {
  const rows = workerRows(stats);
  if (rows.length === 0) return '';
  const head = WORKER_COLUMNS.map(([heading]) => `<th>${escapeHtml(heading)}</th>`).join('');
  const body = rows.map((cells) => `<tr>${cells.map((cell) => `<td>${escapeHtml(cell)}</td>`).join('')}</tr>`).join('\n');
  return `<h2>Worker threads</h2>
<table><thead><tr>${head}</tr></thead><tbody id="workers">
${body}
</tbody></table>
`;
}

export function renderPage(backend: string, stats: ListenerStats): string {
  const rows = listenerRows(stats)
    .map(([name, value]) => `<tr><td>${escapeHtml(name)}</td><td>${escapeHtml(value)}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>native-tls-listener</title>
<noscript><meta http-equiv="refresh" content="${REFRESH_MS / 1000}"></noscript>
<style>
body { font: 15px system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; }
td, th { padding: 0.2em 1em; border-bottom: 1px solid #ddd; font-variant-numeric: tabular-nums; }
td:first-child { font-family: ui-monospace, monospace; }
</style>
</head>
<body>
<h1>native-tls-listener</h1>
<p>You reached HTTPS because your client sent SNI; clients without SNI get the line protocol.
Backend: <b>${escapeHtml(backend)}</b>. Also: <a href="/stats">/stats</a> (JSON), <a href="/metrics">/metrics</a> (Prometheus).</p>
${workersTable(stats)}<table><tbody id="stats">
${rows}
</tbody></table>
<p id="updated"></p>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}

function send(request: http.IncomingMessage, response: http.ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    // Statistics are live: never serve them from a cache.
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}

/** The body for `pathname`, or null when there is no such page. */
async function pageFor(pathname: string, source: StatsSource): Promise<{ type: string; body: string } | null> {
  switch (pathname) {
    case '/':
      return { type: 'text/html; charset=utf-8', body: renderPage(source.backend, await source.stats()) };
    case '/stats':
      return { type: 'application/json', body: `${JSON.stringify(await source.stats())}\n` };
    case '/metrics':
      return { type: PROMETHEUS_CONTENT_TYPE, body: await source.metrics() };
    default:
      return null;
  }
}

export function createWebHandler(source: StatsSource): RequestListener {
  return (request, response) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      send(request, response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    const pathname = new URL(request.url ?? '/', 'https://localhost').pathname;
    pageFor(pathname, source).then(
      (page) => {
        if (page) send(request, response, 200, page.type, page.body);
        else send(request, response, 404, 'text/plain; charset=utf-8', `not found: ${pathname}\ntry /, /stats or /metrics\n`);
      },
      (error: unknown) => send(request, response, 503, 'text/plain; charset=utf-8', `statistics unavailable: ${(error as Error).message}\n`),
    );
  };
}
