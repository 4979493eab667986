// What the CLI's live page costs the server: CPU per benchmark connection with no page open,
// and with the page open in headless Chromium (polling /stats every second), alternated.
//
//   node dist/benchmarks/live_page_cost.js [--connections 3000] [--concurrency 16] [--rounds 3] [--workers N]
//
// Each round starts the CLI (dist/src/cli/main.js, its default certificate, one state directory
// for all rounds), opens the page or not, then runs --connections TLS connections (full
// handshake, the line protocol's greeting, `quit`) with --concurrency at a time, and reads the
// CLI process's CPU time (utime + stime of /proc/<pid>/stat, every thread) before and after.
// Rounds alternate without/with the page so drift on a shared machine hits both alike. Prints
// one JSON line per round, then the medians and ranges. Linux only (/proc).
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { spawn } from 'node:child_process';
import { Chromium } from '../test/support/chromium.js';
import { CLI_PATH, CliProcess } from '../test/support/cli_process.js';

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1] ?? fallback) : fallback;
}

const CONNECTIONS = flag('connections', 3000);
const CONCURRENCY = flag('concurrency', 16);
const ROUNDS = flag('rounds', 3);
/** The CLI's --workers (0: one thread), for the workers' page (their setup books read at each /stats). */
const WORKERS = flag('workers', 0);
const CLI_ARGS = [CLI_PATH, '--port', '0', ...(WORKERS > 0 ? ['--workers', String(WORKERS)] : [])];
// The kernel's clock ticks per second for /proc/<pid>/stat (USER_HZ): 100 on Linux.
const TICKS_PER_SECOND = 100;

/** The process's CPU time in ms, all threads, user and system. */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command (which may hold spaces) start at ") "; utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

/** One connection: handshake, greeting, quit, the server's close. */
function oneConnection(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    socket.once('secureConnect', () => socket.end('quit\n'));
    socket.resume();
    socket.once('error', reject);
    socket.once('close', () => resolve());
  });
}

async function load(port: number): Promise<void> {
  let started = 0;
  const lane = async (): Promise<void> => {
    while (started < CONNECTIONS) {
      started++;
      await oneConnection(port);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
}

interface Round {
  page: boolean;
  connections: number;
  seconds: number;
  cpuMs: number;
  cpuUsPerConnection: number;
  statsRequests: number;
}

async function round(browser: Chromium, stateDir: string, page: boolean): Promise<Round> {
  const cli = new CliProcess(spawn(process.execPath, [...CLI_ARGS, '--state-dir', stateDir], { stdio: ['ignore', 'pipe', 'pipe'] }));
  try {
    const port = await cli.started();
    let tab: Awaited<ReturnType<Chromium['open']>> | null = null;
    if (page) {
      tab = await browser.open(1100, 800, 'light');
      await tab.navigate(`https://localhost:${port}/`);
      // Polling before the load starts: the page's own first costs are not the load's.
      for (let i = 0; i < 100 && (await tab.evaluate<number>('Number(document.body.dataset.samples || 0)')) < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const samplesBefore = tab ? await tab.evaluate<number>('Number(document.body.dataset.samples || 0)') : 0;
    const before = cpuMs(cli.pid);
    const started = process.hrtime.bigint();
    await load(port);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const used = cpuMs(cli.pid) - before;
    const samplesAfter = tab ? await tab.evaluate<number>('Number(document.body.dataset.samples || 0)') : 0;
    if (tab) await tab.close();
    return {
      page,
      connections: CONNECTIONS,
      seconds: Number(seconds.toFixed(2)),
      cpuMs: used,
      cpuUsPerConnection: Number(((used * 1000) / CONNECTIONS).toFixed(1)),
      // The page keeps at most 301 samples; a load shorter than five minutes sees every request.
      statsRequests: samplesAfter - samplesBefore,
    };
  } finally {
    await cli.stop();
  }
}

/** The server's CPU for one /stats request, as the page makes them: over one kept-alive connection. */
async function statsRequestCost(stateDir: string, requests: number): Promise<number> {
  const cli = new CliProcess(spawn(process.execPath, [...CLI_ARGS, '--state-dir', stateDir], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const port = await cli.started();
    const get = (): Promise<void> =>
      new Promise((resolve, reject) => {
        // SNI localhost, as a browser sends it: the HTTPS side.
        const request = https.get({ host: '127.0.0.1', servername: 'localhost', port, path: '/stats', agent, rejectUnauthorized: false }, (response) => {
          response.resume();
          response.once('end', resolve);
        });
        request.once('error', reject);
      });
    await get();
    const before = cpuMs(cli.pid);
    for (let i = 0; i < requests; i++) await get();
    return ((cpuMs(cli.pid) - before) * 1000) / requests;
  } finally {
    agent.destroy();
    await cli.stop();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? NaN) : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2;
}

async function main(): Promise<void> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-live-page-cost-'));
  const browser = Chromium.launch();
  const rounds: Round[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      for (const page of [false, true]) {
        const result = await round(browser, stateDir, page);
        rounds.push(result);
        console.log(JSON.stringify(result));
      }
    }
    const requests = 2000;
    const perRequest = await statsRequestCost(stateDir, requests);
    console.log(`one /stats request over a kept-alive connection: ${perRequest.toFixed(1)} µs of server CPU (${requests} requests)`);
  } finally {
    await browser.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
  for (const page of [false, true]) {
    const costs = rounds.filter((r) => r.page === page).map((r) => r.cpuUsPerConnection);
    console.log(
      `${page ? 'page open' : 'no page  '}: CPU per connection median ${median(costs)} µs, range ${Math.min(...costs)}–${Math.max(...costs)} µs (${costs.join(', ')})`,
    );
  }
  console.log(`load average at the end: ${os.loadavg().map((value) => value.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs`);
}

await main();
