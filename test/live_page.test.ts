// The CLI's live page (`npm start`, then https://localhost:8443/) in a real browser: headless
// Chromium (Debian's `chromium`) driven over the DevTools protocol, against the CLI with its
// embedded default certificate, while a bounded set of real TLS clients (and some that close
// before their handshake) connect. What the page shows is read from its DOM: charts with
// points, non-zero rates, failures by cause, handshake time, per-worker rates with --workers.
// Screenshots (wide, 400 px, dark) go to $LIVE_PAGE_SCREENSHOTS (README: docs/) or a temp dir.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { nativeAvailable } from '../src/index.js';
import { Chromium, chromiumAvailable, CHROMIUM_PATH } from './support/chromium.js';
import type { ChromiumPage } from './support/chromium.js';
import { spawnCliProcess, stateDirFor } from './support/cli_process.js';
import { Cleanup, delay, within } from './support/waiting.js';

const screenshots = process.env.LIVE_PAGE_SCREENSHOTS ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-live-page-'));

/** At most this many connections per load, whatever the machine's speed. */
const MAX_CONNECTIONS = 2000;

/**
 * Clients until stop() (or MAX_CONNECTIONS): every tick a few TLS clients without SNI that get
 * the line protocol's greeting and quit, and one TCP client that closes before its hello (a
 * failed setup, ERR_CLIENT_CLOSED). The rate rises and falls so the charts have a shape.
 */
function startLoad(port: number): { stop(): Promise<number> } {
  let stopped = false;
  let started = 0;
  const running = new Set<Promise<void>>();
  const one = (client: () => net.Socket): void => {
    started++;
    const done = new Promise<void>((resolve) => {
      const socket = client();
      socket.on('error', () => undefined);
      socket.once('close', () => resolve());
      socket.setTimeout(10_000, () => socket.destroy());
    });
    running.add(done);
    void done.then(() => running.delete(done));
  };
  const tick = async (): Promise<void> => {
    for (let round = 0; !stopped && started < MAX_CONNECTIONS; round++) {
      const width = 2 + Math.round(3 * (1 + Math.sin(round / 12)));
      for (let i = 0; i < width; i++) {
        one(() => {
          const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
          socket.once('secureConnect', () => socket.end('quit\n'));
          socket.resume();
          return socket;
        });
      }
      if (round % 3 === 0) one(() => net.connect({ host: '127.0.0.1', port }, function (this: net.Socket) { this.destroy(); }));
      await delay(50);
    }
  };
  const ticking = tick();
  return {
    async stop() {
      stopped = true;
      await ticking;
      await within(Promise.all(running), 'the load clients to finish', 20_000);
      return started;
    },
  };
}

interface PageFacts {
  samples: number;
  tiles: Record<string, string>;
  charts: Record<string, { hidden: boolean; points: number; label: string; legend: string; path: string }>;
  raw: number;
  workerRows: number;
  background: string;
}

const READ_FACTS = `(() => {
  const tiles = {};
  for (const tile of document.querySelectorAll('.tiles b')) tiles[tile.id] = tile.textContent;
  const charts = {};
  for (const figure of document.querySelectorAll('figure')) {
    charts[figure.id.replace('chart-', '')] = {
      hidden: figure.hidden,
      points: Number(figure.dataset.points || 0),
      label: figure.querySelector('svg').getAttribute('aria-label'),
      legend: figure.querySelector('.legend').textContent,
      path: [...figure.querySelectorAll('path')].map((p) => p.getAttribute('d')).join(' '),
    };
  }
  return {
    samples: Number(document.body.dataset.samples || 0),
    tiles,
    charts,
    raw: document.querySelectorAll('#stats tr').length,
    workerRows: document.querySelectorAll('#workers tbody tr').length,
    background: getComputedStyle(document.body).backgroundColor,
  };
})()`;

function facts(page: ChromiumPage): Promise<PageFacts> {
  return page.evaluate<PageFacts>(READ_FACTS);
}

/** Waits until the page has seen the load: `enough(facts)`, read twice a second. */
async function pageShows(page: ChromiumPage, what: string, enough: (facts: PageFacts) => boolean): Promise<PageFacts> {
  const deadline = Date.now() + 40_000;
  for (;;) {
    const last = await facts(page);
    if (enough(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for the page to show ${what}; it shows ${JSON.stringify(last, null, 1)}`);
    await delay(500);
  }
}

const positive = (text: string | undefined): boolean => Number.parseFloat(text ?? '') > 0;

async function save(page: ChromiumPage, name: string, until?: string): Promise<void> {
  const png = await page.screenshot(until);
  expect(png.subarray(1, 4).toString('latin1'), `${name} is a PNG`).to.equal('PNG');
  fs.writeFileSync(path.join(screenshots, name), png);
}

describe('CLI live page, in headless Chromium', function () {
  this.timeout(120_000);
  const cleanup = new Cleanup();
  let browser: Chromium;

  before(function () {
    // .ci/run installs it (apt-get install chromium).
    if (!chromiumAvailable()) {
      console.warn(`    (no browser at ${CHROMIUM_PATH}: apt-get install chromium)`);
      this.skip();
    }
    browser = Chromium.launch();
  });
  after(() => browser?.close());
  afterEach(() => cleanup.run());

  it('one thread: rates, failures by cause, open connections and handshake time, wide, at 400 px and dark', async function () {
    const cli = spawnCliProcess(cleanup, ['--port', '0', '--state-dir', stateDirFor(cleanup)]);
    const port = await cli.started();
    const url = `https://localhost:${port}/`;
    const wide = await browser.open(1100, 800, 'light');
    const narrow = await browser.open(400, 800, 'light');
    const dark = await browser.open(1100, 800, 'dark');
    for (const page of [wide, narrow, dark]) await page.navigate(url);
    const load = startLoad(port);
    cleanup.add(() => load.stop());

    const seen = await pageShows(
      wide,
      'non-zero rates, a failure cause and a handshake time',
      (f) =>
        f.samples >= 15 &&
        positive(f.tiles['t-accepted']) &&
        positive(f.tiles['t-handshakes']) &&
        /ERR_CLIENT_CLOSED/.test(f.charts.failures?.legend ?? '') &&
        /^[\d.]+ \/ [\d.]+$/.test(f.tiles['t-latency'] ?? ''),
    );
    // Under load, as an operator would see it.
    await save(wide, 'live-page.png');
    // What the README shows: the numbers and charts, not the raw counters.
    await save(wide, 'live-page-charts.png', '.charts');
    await save(narrow, 'live-page-400px.png');
    await save(dark, 'live-page-dark.png');
    const connections = await load.stop();
    expect(connections).to.be.within(100, MAX_CONNECTIONS);

    for (const id of ['traffic', 'failures', 'open', 'latency', 'limits']) {
      const chart = seen.charts[id];
      expect(chart?.hidden, `chart ${id} shown`).to.equal(false);
      expect(chart?.points, `points in chart ${id}`).to.be.at.least(5);
      expect(chart?.path, `chart ${id} draws lines`).to.match(/^M[\d.]+ [\d.]+L/);
      expect(chart?.label, `chart ${id}'s text equivalent`).to.match(/: now .*, min .*, max /);
    }
    expect(seen.charts.traffic?.label).to.match(/^accepted: now [\d.]+\/s, min [\d.]+\/s, max [1-9][\d.]*\/s; handshakes completed: /);
    expect(seen.charts.failures?.label).to.match(/ERR_CLIENT_CLOSED: now .*max [1-9]/);
    expect(seen.charts.latency?.label).to.match(/^p50: now [\d.]+ ms.*; p99: /);
    expect(seen.charts.workers?.hidden, 'no per-worker chart on one thread').to.equal(true);
    expect(seen.tiles['t-state']).to.equal('accepting');
    expect(seen.raw, 'the raw counters below the charts').to.be.greaterThan(20);
    expect(JSON.stringify(seen)).to.not.match(/NaN|undefined/);

    // The narrow and dark tabs polled all along: same charts, their own look.
    const narrowFacts = await facts(narrow);
    expect(narrowFacts.charts.traffic?.points).to.be.at.least(5);
    const widths = await narrow.evaluate<{ page: number; view: number }>('({ page: document.documentElement.scrollWidth, view: innerWidth })');
    expect(widths.page, 'nothing wider than 400 px').to.equal(widths.view);
    expect((await facts(dark)).background, 'dark background').to.equal('rgb(13, 17, 23)');
    expect(seen.background, 'light background').to.equal('rgb(255, 255, 255)');

    expect((await cli.stop()).code).to.equal(0);
  });

  it('--workers 2: accepted per second by worker, the balance, failures by cause and handshake time', async function () {
    if (!nativeAvailable()) this.skip();
    const cli = spawnCliProcess(cleanup, ['--port', '0', '--state-dir', stateDirFor(cleanup), '--workers', '2']);
    const port = await cli.started();
    const page = await browser.open(1100, 800, 'light');
    await page.navigate(`https://localhost:${port}/`);
    const load = startLoad(port);
    cleanup.add(() => load.stop());
    const seen = await pageShows(
      page,
      'both workers accepting, a failure cause and a handshake time',
      (f) =>
        f.samples >= 6 &&
        /worker 0 [\d.]*[1-9].*worker 1 [\d.]*[1-9]/.test(f.charts.workers?.legend ?? '') &&
        positive(f.tiles['t-balance']) &&
        /ERR_CLIENT_CLOSED/.test(f.charts.failures?.legend ?? '') &&
        /^[\d.]+ \/ [\d.]+$/.test(f.tiles['t-latency'] ?? ''),
    );
    await save(page, 'live-page-workers.png');
    await load.stop();
    expect(seen.charts.workers?.hidden).to.equal(false);
    expect(seen.charts.workers?.label).to.match(/^worker 0: now .*; worker 1: now /);
    expect(seen.tiles['t-balance']).to.match(/^[\d.]+% of 2$/);
    // The workers' setup books, merged: failures by code and handshake time, as on one thread.
    expect(seen.charts.failures?.label).to.match(/ERR_CLIENT_CLOSED: now .*max [1-9]/);
    expect(seen.charts.latency?.hidden).to.equal(false);
    expect(seen.charts.latency?.points, 'points in the handshake-time chart').to.be.at.least(3);
    expect(seen.charts.latency?.label).to.match(/^p50: now [\d.]+ ms.*; p99: /);
    expect(await page.evaluate<boolean>("document.getElementById('t-latency').parentElement.hidden"), 'the handshake time tile').to.equal(false);
    expect(seen.workerRows).to.equal(2);
    expect((await cli.stop()).code).to.equal(0);
  });
});
