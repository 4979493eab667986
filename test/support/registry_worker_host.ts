// A process of its own for test/tls_worker.test.ts, so a crash while a worker's environment is
// torn down (the addon's async cleanup hook, libuv handles) takes down this process, not mocha.
//
//   node registry_worker_host.js <native|js> <cycles>
//
// Runs a TLS listener in a worker thread, connects clients (some past the handshake, some
// still in it), terminates the worker and records what was left; repeats; meanwhile a
// listener on the main thread (same backend) must keep serving. Prints one line
// `RESULT <json>` (a WorkerHostResult) and exits by itself once everything is closed.
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TLSListener } from '../../src/index.js';
import type { ListenerStats } from '../../src/index.js';
import { createTestPki } from './pki.js';
import type { TlsWorkerConfig, TlsWorkerEvent } from './registry_tls_worker.js';
import {
  delay,
  descriptorsOnPort,
  fdCount,
  openDescriptors,
  tcpPeer,
  tlsPeer,
  waitUntil,
  within,
} from './registry_support.js';
import type { Peer } from './registry_support.js';

export interface WorkerCycleResult {
  port: number;
  backend: string;
  /** stats() inside the worker just before it was terminated */
  statsBefore: ListenerStats;
  exitCode: number;
  /** descriptors of this process on the worker's port right after terminate() resolved */
  onPortAfterTerminate: number[];
  /** the same, once every client had seen its connection close */
  onPortAfterClients: number[];
  clientsClosed: number;
  clients: number;
  /** connection attempts made while the worker was being terminated */
  floodAttempts: number;
  /** a plain server could bind the port exclusively afterwards */
  rebound: boolean;
  workerErrors: string[];
}

export interface WorkerHostResult {
  backend: string;
  cycles: WorkerCycleResult[];
  fdBaseline: number;
  fdAfter: number;
  /** descriptors open after the cycles that were not open before them */
  fdExtra: string[];
  mainListenerServedAfter: boolean;
  mainListenerStats: ListenerStats;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const workerScript = path.join(here, 'registry_tls_worker.js');
const TLS_CLIENTS = 20;
const HANDSHAKING_CLIENTS = 5;

function canBindExclusively(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Keeps connecting (and dropping) clients to `port` until stop() is called. */
function flood(port: number): { stop: () => Promise<number> } {
  let running = true;
  let attempts = 0;
  const lane = async (): Promise<void> => {
    while (running) {
      attempts++;
      await new Promise<void>((resolve) => {
        const socket = net.connect({ port, host: '127.0.0.1' });
        const timer = setTimeout(() => socket.destroy(), 2000);
        socket.on('error', () => undefined);
        socket.once('connect', () => socket.end(Buffer.from([0x16, 0x03, 0x01])));
        socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };
  const lanes = Promise.all(Array.from({ length: 8 }, lane));
  return {
    stop: async () => {
      running = false;
      await lanes;
      return attempts;
    },
  };
}

async function cycle(config: TlsWorkerConfig, ca: string, withFlood: boolean): Promise<WorkerCycleResult> {
  const worker = new Worker(workerScript, { workerData: config });
  const workerErrors: string[] = [];
  worker.on('error', (error: Error) => workerErrors.push(String(error.stack ?? error)));
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const next = (event: TlsWorkerEvent['event']): Promise<TlsWorkerEvent> =>
    within(
      new Promise<TlsWorkerEvent>((resolve, reject) => {
        const onMessage = (message: TlsWorkerEvent): void => {
          if (message.event === 'failed') reject(new Error(`the worker failed: ${message.message}`));
          if (message.event !== event) return;
          worker.off('message', onMessage);
          resolve(message);
        };
        worker.on('message', onMessage);
        void exited.then((code) => reject(new Error(`the worker exited with ${code}: ${workerErrors.join('; ')}`)));
      }),
      `the worker's ${event} message`,
    );
  const listening = await next('listening');
  if (listening.event !== 'listening') throw new Error('unreachable');
  const { port } = listening;

  const peers: Peer[] = [];
  try {
    for (let i = 0; i < TLS_CLIENTS; i++) {
      const peer = await tlsPeer(port, { ca });
      peers.push(peer);
      await waitUntil(() => peer.received.includes('\n'), `the greeting of TLS client ${i + 1}`);
      peer.socket.write(`ping ${i}\n`);
      await waitUntil(() => peer.received.includes(`ping ${i}\n`), `the echo to TLS client ${i + 1}`);
    }
    for (let i = 0; i < HANDSHAKING_CLIENTS; i++) peers.push(await tcpPeer(port));
    // Asks until the worker tracks every client (bounded: 50 asks).
    let statsBefore: ListenerStats | undefined;
    for (let tries = 0; tries < 50 && statsBefore?.active !== TLS_CLIENTS + HANDSHAKING_CLIENTS; tries++) {
      worker.postMessage({ ask: 'stats' });
      const reply = await next('stats');
      if (reply.event === 'stats') statsBefore = reply.stats;
      if (statsBefore?.active !== TLS_CLIENTS + HANDSHAKING_CLIENTS) await delay(20);
    }

    const flooding = withFlood ? flood(port) : undefined;
    if (flooding) await delay(50);
    const exitCode = await within(worker.terminate(), 'worker.terminate()');
    const onPortAfterTerminate = descriptorsOnPort(port);
    const floodAttempts = flooding ? await within(flooding.stop(), 'the flood to stop') : 0;
    await within(Promise.all(peers.map((peer) => peer.closing)), 'every client of the worker to see its connection close').catch(
      () => undefined,
    );
    const clientsClosed = peers.filter((peer) => peer.closed).length;
    const onPortAfterClients = descriptorsOnPort(port);
    return {
      port,
      backend: listening.backend,
      statsBefore: statsBefore ?? ({} as ListenerStats),
      exitCode,
      onPortAfterTerminate,
      onPortAfterClients,
      clientsClosed,
      clients: peers.length,
      floodAttempts,
      rebound: await canBindExclusively(port),
      workerErrors,
    };
  } finally {
    for (const peer of peers) peer.destroy();
    await worker.terminate();
  }
}

async function main(): Promise<void> {
  const backend = process.argv[2] === 'js' ? 'js' : 'native';
  const cycles = Number(process.argv[3] ?? '3');
  const pki = await createTestPki();
  const config: TlsWorkerConfig = { backend, cert: pki.server.cert, key: pki.server.key };

  // A listener on the main thread of the same process, on the same backend: the addon is
  // loaded in both environments, and ending the worker's must leave this one working.
  const mainListener = new TLSListener(
    { port: 0, host: '127.0.0.1', backend, credential: { cert: pki.server.cert, key: pki.server.key } },
    (socket, info) => void socket.end(`main ${info.id}\n`),
  );
  const mainPort = (await mainListener.listen()).port;

  // Warm-up: what Node opens once per process for a first worker and first sockets.
  await cycle(config, pki.ca.cert, false);
  const baseline = openDescriptors();
  const results: WorkerCycleResult[] = [];
  for (let i = 0; i < cycles; i++) results.push(await cycle(config, pki.ca.cert, i === cycles - 1));
  await waitUntil(() => fdCount() <= baseline.size, 'the descriptor count to return to its baseline').catch(() => undefined);
  const after = openDescriptors();
  const fdExtra = [...after].filter(([fd, target]) => baseline.get(fd) !== target).map(([fd, target]) => `${fd}->${target}`);

  const check = await tlsPeer(mainPort, { ca: pki.ca.cert });
  await check.closedWithin();
  const mainListenerServedAfter = check.received === `main 1\n`;
  await within(mainListener.close(), 'the main-thread listener to close');

  const result: WorkerHostResult = {
    backend,
    cycles: results,
    fdBaseline: baseline.size,
    fdAfter: after.size,
    fdExtra,
    mainListenerServedAfter,
    mainListenerStats: mainListener.stats(),
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 2;
  });
}
