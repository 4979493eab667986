// Listeners with `workers`: a native accept thread hands each connection to the worker thread
// with the fewest active connections; the main thread keeps one book for all of them.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { expect } from 'chai';
import { createLocalTCPListener, ErrorCodes } from '../src/index.js';
import type { WorkerEvent, WorkersListener } from '../src/index.js';
import type { WorkersHandlerConfig } from './fixtures/workers_handler.js';
import { loadNativeBinding } from '../src/native/load.js';
import { compiledFixture } from './support/paths.js';
import { descriptorCount } from './support/proc.js';
import { Cleanup, canBind, connect, delay, waitUntil, within } from './support/sockets.js';
import type { Client } from './support/sockets.js';

const handlerModule = compiledFixture('workers_handler');

async function startWorkers(
  cleanup: Cleanup,
  config: WorkersHandlerConfig,
  count = 2,
): Promise<{ listener: WorkersListener; port: number; events: WorkerEvent[] }> {
  const listener = createLocalTCPListener({ port: 0, workers: { count, module: handlerModule, workerData: config } });
  const events: WorkerEvent[] = [];
  listener.on('worker', (event: WorkerEvent) => events.push(event));
  cleanup.add(() => listener.close());
  const { port } = await within(listener.listen(), 'the workers to start', 10_000);
  return { listener, port, events };
}

/** Which worker thread served a client, from its greeting "<threadId> <id>". */
async function servedBy(client: Client): Promise<number> {
  return Number((await client.line()).split(' ')[0]);
}

function expectBalanced(listener: WorkersListener): void {
  const stats = listener.stats();
  expect(stats.leaked, JSON.stringify(stats)).to.equal(0);
  expect(stats.accepted).to.equal(stats.closed + stats.active);
  expect(stats.workers.reduce((sum, w) => sum + w.accepted, 0)).to.equal(stats.accepted);
}

describe('workers: connections go to the worker with the fewest active connections', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('2,000 connections held open with 2 workers: each worker holds 1,000 ± 10%', async function () {
    this.timeout(60_000);
    const { listener, port } = await startWorkers(cleanup, { mode: 'hold' });
    const clients: Client[] = [];
    for (let wave = 0; wave < 20; wave++) {
      const batch = await Promise.all(Array.from({ length: 100 }, () => connect(port)));
      for (const c of batch) cleanup.add(() => c.destroy());
      clients.push(...batch);
    }
    await Promise.all(clients.map((c) => c.line()));
    const stats = listener.stats();
    expect(stats.active).to.equal(2000);
    for (const worker of stats.workers) expect(worker.active, `worker ${worker.id}`).to.be.within(900, 1100);
    expectBalanced(listener);
  });

  it("with one worker's handler slow, new connections go to the other", async () => {
    const { listener, port } = await startWorkers(cleanup, { mode: 'greet', slowParity: 1 });
    const answered: number[] = [];
    let held = 0;
    for (let i = 0; i < 40; i++) {
      const c = await connect(port);
      cleanup.add(() => c.destroy());
      const line = await c.line(0, 300).catch(() => null);
      if (line === null) {
        // The slow worker took it and holds it without answering: it stays open.
        held++;
        continue;
      }
      answered.push(Number(line.split(' ')[0]));
      c.destroy();
      await waitUntil(() => listener.stats().active === held, 'the quick worker to release the connection');
    }
    expect(held, JSON.stringify(listener.stats().workers)).to.be.within(1, 2);
    expect(answered.length).to.equal(40 - held);
    expect(new Set(answered).size).to.equal(1);
    expectBalanced(listener);
  });
});

describe('workers: accepting and serving go on while the main thread is blocked', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('a main thread in a 1 s busy loop: clients are accepted and served by the workers meanwhile', async function () {
    this.timeout(20_000);
    const { port } = await startWorkers(cleanup, { mode: 'greet' });
    const child = spawn(process.execPath, [compiledFixture('workers_blocked_client'), String(port), '2000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.add(() => child.kill('SIGKILL'));
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    await waitUntil(() => output.includes('started\n'), 'the client process to start');
    await delay(200);
    const blockedFrom = Date.now();
    while (Date.now() - blockedFrom < 1000) {
      // Busy: no timer, no I/O callback, nothing of the main thread's loop runs.
    }
    const blockedUntil = Date.now();
    await within(once(child, 'exit'), 'the client process to finish', 10_000);
    const served = JSON.parse(output.split('\n')[1] ?? '[]') as number[];
    const whileBlocked = served.filter((at) => at > blockedFrom + 50 && at < blockedUntil - 50);
    expect(whileBlocked.length, `served ${served.length}, during the block ${whileBlocked.length}`).to.be.at.least(10);
  });
});

describe('workers: close() stops accepting at once and resolves when every worker released every descriptor', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  for (const graceful of [false, true]) {
    it(`close(${graceful ? '{ gracefulTimeout: 2000 }' : ''}) with 20 connections held: port free at once, every client closed, books balanced`, async () => {
      const { listener, port } = await startWorkers(cleanup, { mode: 'hold' });
      const clients = await Promise.all(Array.from({ length: 20 }, () => connect(port)));
      for (const c of clients) cleanup.add(() => c.destroy());
      await Promise.all(clients.map((c) => c.line()));
      const closing = listener.close(graceful ? { gracefulTimeout: 2000 } : {});
      expect(await canBind(port), 'the port is free as soon as close() returns').to.equal(true);
      await within(closing, 'close() to resolve');
      await Promise.all(clients.map((c) => c.whenClosed()));
      if (graceful) expect(clients.every((c) => c.ended), 'graceful: each client saw our FIN').to.equal(true);
      const stats = listener.stats();
      expect({ accepted: stats.accepted, closed: stats.closed, active: stats.active, leaked: stats.leaked }).to.deep.equal({
        accepted: 20,
        closed: 20,
        active: 0,
        leaked: 0,
      });
    });
  }
});

describe('workers: a worker that dies is replaced, and its connections are counted closed', () => {
  const cleanup = new Cleanup();
  let marker: string;
  before(async () => {
    const warm = new Worker('', { eval: true });
    await once(warm, 'exit');
    marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-workers-')), 'fail');
  });
  afterEach(() => cleanup.run());

  it('a worker crashed under load: no descriptor leaked, counters balance, the worker is replaced', async function () {
    this.timeout(30_000);
    const baseline = descriptorCount();
    const { listener, port, events } = await startWorkers(cleanup, { mode: 'hold' });
    const held = await Promise.all(Array.from({ length: 40 }, () => connect(port)));
    for (const c of held) cleanup.add(() => c.destroy());
    const threads = await Promise.all(held.map(servedBy));
    const victim = held[0];
    if (!victim) throw new Error('no client');
    victim.socket.write('crash\n');
    await waitUntil(() => events.some((e) => e.type === 'exit'), 'the crashed worker to be reported');
    const exit = events.find((e) => e.type === 'exit');
    expect(exit).to.include({ exitCode: 1, restartInMs: 0 });
    // Every connection of the dead worker closed with it; the other worker's stay open.
    const ofVictim = held.filter((_, i) => threads[i] === threads[0]);
    await Promise.all(ofVictim.map((c) => c.whenClosed()));
    await waitUntil(() => events.filter((e) => e.type === 'online').length === 3, 'the replacement to come online');
    // New connections go to the replacement, which has the fewest active connections.
    const replacement = events.filter((e) => e.type === 'online').at(-1)?.threadId;
    const fresh = await Promise.all(Array.from({ length: 20 }, () => connect(port)));
    for (const c of fresh) cleanup.add(() => c.destroy());
    const freshThreads = new Set(await Promise.all(fresh.map(servedBy)));
    expect([...freshThreads]).to.deep.equal([replacement]);
    expectBalanced(listener);
    const stats = listener.stats();
    expect(stats.active).to.equal(60 - ofVictim.length);
    expect(stats.workers.map((w) => w.starts).sort()).to.deep.equal([1, 2]);
    await listener.close();
    await waitUntil(() => descriptorCount() === baseline, () => `the descriptor count to return to ${baseline} (${descriptorCount()})`);
  });

  it('a replacement that keeps throwing at load is retried with a doubling back-off until it loads', async function () {
    this.timeout(30_000);
    const { listener, port, events } = await startWorkers(cleanup, { mode: 'hold', failWhileExists: marker }, 1);
    cleanup.add(() => fs.rmSync(marker, { force: true }));
    const c = await connect(port);
    cleanup.add(() => c.destroy());
    await c.line();
    fs.writeFileSync(marker, '');
    c.socket.write('crash\n');
    await waitUntil(() => events.filter((e) => e.type === 'exit').length >= 4, 'the failing replacements to be reported', 10_000);
    const delays = events.flatMap((e) => (e.type === 'exit' ? [e.restartInMs] : []));
    expect(delays.slice(0, 4), 'at once after a long life, then doubling').to.deep.equal([0, 100, 200, 400]);
    const failed = events.filter((e) => e.type === 'exit').slice(1);
    for (const e of failed) expect(e.type === 'exit' ? (e.error as { code?: string } | undefined)?.code : '').to.equal(ErrorCodes.WORKER_FAILED);
    // Meanwhile no worker takes connections: they wait in the backlog, and are served once one loads.
    const waiting = await connect(port);
    cleanup.add(() => waiting.destroy());
    fs.rmSync(marker);
    expect(await within(waiting.line(0, 10_000), 'the waiting client to be served', 10_000)).to.match(/^\d+ \d+$/);
    expectBalanced(listener);
  });

  it('a module that throws at load: listen() rejects with ERR_WORKER_FAILED and nothing is left open', async () => {
    fs.writeFileSync(marker, '');
    cleanup.add(() => fs.rmSync(marker, { force: true }));
    const baseline = descriptorCount();
    const listener = createLocalTCPListener({ port: 0, workers: { count: 2, module: handlerModule, workerData: { mode: 'hold', failWhileExists: marker } } });
    const error = await listener.listen().then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error?.code).to.equal(ErrorCodes.WORKER_FAILED);
    expect(error?.message).to.include('told to fail at load');
    // A terminated worker's own loop descriptors go with its thread, which a loaded machine
    // may take a few seconds to finish.
    await waitUntil(() => descriptorCount() === baseline, () => `the descriptor count to return to ${baseline} (${descriptorCount()})`, 15_000);
  });

  it("a module that throws at load: no 'close', and listen() again starts fresh workers once it loads", async function () {
    this.timeout(30_000);
    fs.writeFileSync(marker, '');
    cleanup.add(() => fs.rmSync(marker, { force: true }));
    const listener = createLocalTCPListener({ port: 0, workers: { count: 2, module: handlerModule, workerData: { mode: 'greet', failWhileExists: marker } } });
    cleanup.add(() => listener.close());
    let closeEvents = 0;
    listener.on('close', () => closeEvents++);
    const error = await listener.listen().then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error?.code).to.equal(ErrorCodes.WORKER_FAILED);
    expect(closeEvents, "'close' events after the failed listen()").to.equal(0);
    fs.rmSync(marker);
    const { port } = await within(listener.listen(), 'listen() again', 15_000);
    const c = await connect(port);
    cleanup.add(() => c.destroy());
    expect(await c.line()).to.match(/^\d+ \d+$/);
    await listener.close();
    expect(closeEvents, "'close' events after close()").to.equal(1);
  });
});

describe('workers: an adopted listening descriptor', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('fd: a listening socket opened elsewhere is served by the workers and closed by close()', async () => {
    const binding = loadNativeBinding().binding;
    if (!binding) throw new Error('the addon did not load');
    const outcome = binding.openListenSocket(4, '127.0.0.1', 0, 128);
    if (!('fd' in outcome)) throw new Error(`openListenSocket failed: ${JSON.stringify(outcome)}`);
    const listener = createLocalTCPListener({ port: 0, fd: outcome.fd, workers: { count: 2, module: handlerModule, workerData: { mode: 'greet' } } });
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the workers to start on the adopted socket', 10_000);
    const c = await connect(port);
    cleanup.add(() => c.destroy());
    expect(await c.line()).to.match(/^\d+ 1$/);
    await listener.close();
    expect(await canBind(port), 'close() closed the adopted socket').to.equal(true);
  });
});

describe('workers: options', () => {
  it("backend 'js' cannot serve workers: ERR_NATIVE_REQUIRED at creation", () => {
    expect(() => createLocalTCPListener({ port: 0, backend: 'js', workers: { count: 1, module: handlerModule } }))
      .to.throw()
      .with.property('code', ErrorCodes.NATIVE_REQUIRED);
  });

  it('a bad admission limit or PROXY setting is refused at creation (the per-address limit and deferAccept are checked as on one thread)', () => {
    for (const extra of [
      { maxConnectionsPerAddress: 0 },
      { maxConnectionsPerAddress: 1.5 },
      { maxConnectionsPerAddress: 1, perAddressIPv6Prefix: 0 },
      { maxConnectionsPerAddress: 1, perAddressIPv6Prefix: 129 },
      { deferAccept: 3601 },
      { deferAccept: '5' },
      { proxyProtocol: 'v1' },
      { proxyProtocol: 'v3', trustedProxies: ['127.0.0.1'] },
    ]) {
      expect(() => createLocalTCPListener({ port: 0, ...extra, workers: { count: 1, module: handlerModule } } as never), JSON.stringify(extra))
        .to.throw()
        .with.property('code', ErrorCodes.INVALID_OPTION);
    }
  });

  it('a bad workers option is refused with ERR_INVALID_OPTION', () => {
    for (const workers of [{ count: 0, module: handlerModule }, { module: '' }, { module: handlerModule, workerData: () => 1 }, { module: handlerModule, threads: 2 }]) {
      expect(() => createLocalTCPListener({ port: 0, workers: workers as never }), JSON.stringify(workers))
        .to.throw()
        .with.property('code', ErrorCodes.INVALID_OPTION);
    }
  });
});

describe('workers: metrics() labels samples per worker', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('totals as for one thread, then accepted/closed/active per worker (label worker)', async () => {
    const { listener, port } = await startWorkers(cleanup, { mode: 'hold' });
    const clients = await Promise.all(Array.from({ length: 4 }, () => connect(port)));
    for (const c of clients) cleanup.add(() => c.destroy());
    await Promise.all(clients.map((c) => c.line()));
    const text = listener.metrics({ listener: 'main' });
    expect(text).to.include('native_tls_listener_connections_accepted_total{listener="main"} 4');
    for (const worker of [0, 1]) {
      expect(text).to.include(`native_tls_listener_worker_connections_accepted_total{listener="main",worker="${worker}"} 2`);
      expect(text).to.include(`native_tls_listener_worker_connections_active{listener="main",worker="${worker}"} 2`);
    }
  });
});

describe('workers: descriptor exhaustion pauses the accept thread, which recovers', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('250 held clients with 128 descriptors: acceptPaused (EMFILE) reaches the main thread; once clients leave, new ones are served', async function () {
    this.timeout(40_000);
    const child = spawn('prlimit', ['--nofile=128:128', process.execPath, compiledFixture('workers_exhaustion_child')], { stdio: ['pipe', 'pipe', 'inherit'] });
    cleanup.add(() => child.kill('SIGKILL'));
    const lines: Array<Record<string, unknown>> = [];
    let buffer = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      for (const part of parts) lines.push(JSON.parse(part) as Record<string, unknown>);
    });
    await waitUntil(() => lines.some((l) => l.event === 'listening'), 'the child to listen', 15_000);
    const port = Number(lines.find((l) => l.event === 'listening')?.port);
    const flood: Client[] = [];
    cleanup.add(() => flood.forEach((c) => c.destroy()));
    for (let i = 0; i < 250; i++) flood.push(await connect(port));
    await waitUntil(() => lines.some((l) => l.event === 'acceptPaused'), 'acceptPaused from the main thread', 10_000);
    expect(lines.find((l) => l.event === 'acceptPaused')).to.include({ code: 'EMFILE' });
    for (const c of flood) c.destroy();
    const late = await connect(port);
    cleanup.add(() => late.destroy());
    expect(await within(late.line(0, 15_000), 'a client after the flood to be served', 15_000)).to.match(/^\d+ \d+$/);
    late.destroy();
    const statsOf = async (): Promise<{ accepted: number; closed: number; active: number; leaked: number; acceptPauses: number }> => {
      const seen = lines.length;
      child.stdin.write('stats\n');
      await waitUntil(() => lines.slice(seen).some((l) => l.event === 'stats'), 'stats from the child');
      return lines.slice(seen).find((l) => l.event === 'stats')?.stats as never;
    };
    let stats = await statsOf();
    const deadline = Date.now() + 10_000;
    while (stats.active > 0 && Date.now() < deadline) {
      await delay(100);
      stats = await statsOf();
    }
    expect(stats.acceptPauses).to.be.greaterThan(0);
    expect({ active: stats.active, leaked: stats.leaked }).to.deep.equal({ active: 0, leaked: 0 });
    expect(stats.closed).to.equal(stats.accepted);
  });
});
