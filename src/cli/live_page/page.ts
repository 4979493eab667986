// The live page's HTML and CSS: the same bytes for every visitor (built once per listener, see
// ../web.ts), so a visit costs the server the page once and then one /stats a second. Numbers
// at a glance, then charts of the last five minutes (each an SVG inside a <figure>, its
// caption the legend with the current values, its aria-label the current/min/max), then the
// raw counters. Reads at 400 px and follows the system's dark mode.
import { PAGE_SCRIPT, WORKER_COLUMNS } from './page_script.js';

/** Charts in page order: id (the script's), title, and what a reader needs to read it. */
const CHARTS: ReadonlyArray<[string, string, string]> = [
  ['traffic', 'Connections per second', 'accepted by the listening socket, and TLS handshakes completed'],
  ['failures', 'Failed setups per second, by cause', 'the error code tlsClientError reports'],
  ['open', 'Open connections', 'all, and those still in their TLS setup'],
  ['latency', 'Handshake time', 'from accept to the handler, per second: median and 99th percentile'],
  ['limits', 'Pauses and shed connections per second', 'accepting paused at a limit or on accept errors; connections closed at a limit'],
  ['workers', 'Accepted per second, by worker', 'how the accept thread spreads connections over the worker threads'],
];

/** Tiles at the top: id, label. The listener's state first, wide: it may name a limit. */
const TILES: ReadonlyArray<[string, string]> = [
  ['t-state', 'listener'],
  ['t-accepted', 'accepted/s'],
  ['t-handshakes', 'handshakes/s'],
  ['t-failed', 'failed setups/s'],
  ['t-active', 'open connections'],
  ['t-setup', 'in TLS setup'],
  ['t-latency', 'handshake p50 / p99 (ms)'],
  ['t-shed', 'shed or refused/s'],
  ['t-balance', "busiest worker's share"],
];

const STYLE = `
:root { color-scheme: light dark; --bg: #fff; --fg: #1f2328; --muted: #59636e; --card: #f6f8fa; --grid: #d1d9e0;
  --alert: #9a6700; --c0: #0969da; --c1: #1a7f37; --c2: #cf222e; --c3: #8250df; --c4: #bc4c00; --c5: #1b7c83; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --card: #161b22; --grid: #3d444d;
    --alert: #d29922; --c0: #4493f8; --c1: #3fb950; --c2: #f85149; --c3: #ab7df8; --c4: #db6d28; --c5: #39c5cf; }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 1rem; font: 15px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
h1 { font-size: 1.3rem; margin: 0 0 0.25rem; }
h2 { font-size: 1.05rem; margin: 1.5rem 0 0.5rem; }
p { margin: 0.25rem 0; }
a { color: var(--c0); }
.muted, #updated { color: var(--muted); font-size: 0.9rem; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(10.5rem, 1fr)); gap: 0.5rem; margin: 1rem 0; padding: 0; list-style: none; }
.tiles li { background: var(--card); border-radius: 6px; padding: 0.4rem 0.7rem; color: var(--muted); font-size: 0.85rem; }
.tiles li b { display: block; color: var(--fg); font-size: 1.35rem; font-variant-numeric: tabular-nums; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.tiles li.alert b { color: var(--alert); }
.tiles li:first-child { grid-column: span 2; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 22rem), 1fr)); gap: 0.75rem; }
figure { margin: 0; background: var(--card); border-radius: 6px; padding: 0.5rem 0.7rem; min-width: 0; }
figcaption b { font-weight: 600; }
figcaption .about { display: block; color: var(--muted); font-size: 0.8rem; }
.legend { display: flex; flex-wrap: wrap; gap: 0.2rem 0.9rem; font-size: 0.85rem; margin-top: 0.2rem; }
.legend b { font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 0.8em; height: 0.25em; margin-right: 0.3em; vertical-align: middle; border-radius: 1px; }
svg { display: block; width: 100%; height: 140px; overflow: visible; }
.grid { stroke: var(--grid); stroke-width: 1; }
.axis { fill: var(--muted); font-size: 11px; font-variant-numeric: tabular-nums; }
.line { fill: none; stroke-width: 1.75; stroke-linejoin: round; }
${[0, 1, 2, 3, 4, 5].map((i) => `.line.s${i} { stroke: var(--c${i}); } .swatch.s${i} { background: var(--c${i}); }`).join('\n')}
.raw { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.9rem; }
td, th { padding: 0.15rem 0.8rem 0.15rem 0; border-bottom: 1px solid var(--grid); text-align: left; font-variant-numeric: tabular-nums; vertical-align: top; }
#stats td:first-child { font-family: ui-monospace, monospace; }
#stats td:last-child { overflow-wrap: anywhere; }
`;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function figure([id, title, about]: readonly [string, string, string]): string {
  // Hidden until the script has something to draw in it (latency and workers may never have).
  return `<figure id="chart-${id}" hidden>
<figcaption><b>${escapeHtml(title)}</b><span class="about">${escapeHtml(about)}</span><span class="legend"></span></figcaption>
<svg role="img" aria-label="no data yet"></svg>
</figure>`;
}

export function livePage(backend: string): string {
  const tiles = TILES.map(([id, label]) => `<li>${escapeHtml(label)}<b id="${id}">–</b></li>`).join('\n');
  const workerHead = WORKER_COLUMNS.map(([heading]) => `<th>${escapeHtml(heading)}</th>`).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>native-tls-listener</title>
<style>${STYLE}</style>
</head>
<body>
<h1>native-tls-listener</h1>
<p class="muted">Backend <b>${escapeHtml(backend)}</b>. You reached HTTPS because your client sent SNI; clients without SNI get the line protocol.
Also: <a href="/stats">/stats</a> (JSON), <a href="/metrics">/metrics</a> (Prometheus).</p>
<noscript><p>This page draws its charts with JavaScript; without it, read <a href="/stats">/stats</a>.</p></noscript>
<p id="updated">waiting for /stats</p>
<ul class="tiles" aria-label="now">
${tiles}
</ul>
<h2>The last five minutes</h2>
<div class="charts">
${CHARTS.map(figure).join('\n')}
</div>
<h2>Counters since start</h2>
<div class="raw">
<table id="workers" hidden><caption class="muted">Worker threads</caption><thead><tr>${workerHead}</tr></thead><tbody></tbody></table>
<table><tbody id="stats"></tbody></table>
</div>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
