// What clients that send SNI get: HTTPS with the listener's statistics. `/` is the live page
// (./live_page/), the same bytes for every visitor, built once: its script fetches `/stats`
// every second and does all the arithmetic and drawing itself. `/stats` is the JSON, `/metrics`
// the Prometheus text. With worker threads the statistics may come from another thread (a
// promise) and include `workers`, which the page charts too.
import type http from 'node:http';
import { PROMETHEUS_CONTENT_TYPE } from '../index.js';
import type { ListenerStats, RequestListener } from '../index.js';
import { livePage } from './live_page/page.js';

export interface StatsSource {
  readonly backend: string;
  stats(): ListenerStats | Promise<ListenerStats>;
  metrics(): string | Promise<string>;
}

function send(request: http.IncomingMessage, response: http.ServerResponse, status: number, type: string, body: string | Buffer): void {
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
  // Built at the first visit: the backend is known only once the listener exists.
  let page: Buffer | undefined;

  /** The body for `pathname`, or null when there is no such page. */
  const pageFor = async (pathname: string): Promise<{ type: string; body: string | Buffer } | null> => {
    switch (pathname) {
      case '/':
        page ??= Buffer.from(livePage(source.backend));
        return { type: 'text/html; charset=utf-8', body: page };
      case '/stats':
        return { type: 'application/json', body: `${JSON.stringify(await source.stats())}\n` };
      case '/metrics':
        return { type: PROMETHEUS_CONTENT_TYPE, body: await source.metrics() };
      default:
        return null;
    }
  };

  return (request, response) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      send(request, response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    const pathname = new URL(request.url ?? '/', 'https://localhost').pathname;
    pageFor(pathname).then(
      (found) => {
        if (found) send(request, response, 200, found.type, found.body);
        else send(request, response, 404, 'text/plain; charset=utf-8', `not found: ${pathname}\ntry /, /stats or /metrics\n`);
      },
      (error: unknown) => send(request, response, 503, 'text/plain; charset=utf-8', `statistics unavailable: ${(error as Error).message}\n`),
    );
  };
}
