// What clients that send SNI get: HTTPS with the listener's statistics. `/` is a page that
// keeps itself current by fetching `/stats` every second (and reloads itself without script),
// `/stats` is the JSON, `/metrics` the Prometheus text.
import type http from 'node:http';
import { PROMETHEUS_CONTENT_TYPE } from '../index.js';
import type { ListenerStats, RequestListener } from '../index.js';

export interface StatsSource {
  readonly backend: string;
  stats(): ListenerStats;
  metrics(): string;
}

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

// The same flattening as above, in the browser.
const PAGE_SCRIPT = `
const flatten = (value, prefix = '') => {
  if (typeof value !== 'object' || value === null) return [[prefix, String(value)]];
  const rows = Object.entries(value).flatMap(([key, inner]) => flatten(inner, prefix ? prefix + '.' + key : key));
  return rows.length > 0 ? rows : [[prefix, '-']];
};
const body = document.getElementById('stats');
const when = document.getElementById('updated');
async function refresh() {
  try {
    const response = await fetch('/stats', { cache: 'no-store' });
    const rows = flatten(await response.json());
    body.replaceChildren(...rows.map(([name, value]) => {
      const row = document.createElement('tr');
      for (const text of [name, value]) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    }));
    when.textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (error) {
    when.textContent = 'server unreachable: ' + error.message;
  }
}
setInterval(refresh, ${REFRESH_MS});
`;

export function renderPage(source: StatsSource): string {
  const rows = flatten(source.stats())
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
td { padding: 0.2em 1em; border-bottom: 1px solid #ddd; font-variant-numeric: tabular-nums; }
td:first-child { font-family: ui-monospace, monospace; }
</style>
</head>
<body>
<h1>native-tls-listener</h1>
<p>You reached HTTPS because your client sent SNI; clients without SNI get the line protocol.
Backend: <b>${escapeHtml(source.backend)}</b>. Also: <a href="/stats">/stats</a> (JSON), <a href="/metrics">/metrics</a> (Prometheus).</p>
<table><tbody id="stats">
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

export function createWebHandler(source: StatsSource): RequestListener {
  return (request, response) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      send(request, response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    const pathname = new URL(request.url ?? '/', 'https://localhost').pathname;
    switch (pathname) {
      case '/':
        send(request, response, 200, 'text/html; charset=utf-8', renderPage(source));
        return;
      case '/stats':
        send(request, response, 200, 'application/json', `${JSON.stringify(source.stats())}\n`);
        return;
      case '/metrics':
        send(request, response, 200, PROMETHEUS_CONTENT_TYPE, source.metrics());
        return;
      default:
        send(request, response, 404, 'text/plain; charset=utf-8', `not found: ${pathname}\ntry /, /stats or /metrics\n`);
    }
  };
}
