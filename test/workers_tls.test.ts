// TLS listeners with `workers`: every worker's contexts share the session ticket keys, so a
// session issued by one worker resumes on another; client errors reach the main listener,
// bounded; the books count every worker's handshakes.
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { Worker } from 'node:worker_threads';
import { expect } from 'chai';
import { createListener, ErrorCodes } from '../src/index.js';
import type { WorkerEvent, WorkersListener } from '../src/index.js';
import type { WorkersHandlerConfig } from './fixtures/workers_handler.js';
import { compiledFixture } from './support/paths.js';
import { descriptorCount } from './support/proc.js';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import { Cleanup, waitUntil, within } from './support/sockets.js';

const handlerModule = compiledFixture('workers_handler');

async function startTlsWorkers(cleanup: Cleanup, pki: TestPki): Promise<{ listener: WorkersListener; port: number }> {
  const listener = createListener({
    host: '127.0.0.1',
    port: 0,
    credential: pki.server,
    workers: { count: 2, module: handlerModule, workerData: { mode: 'greet' } satisfies WorkersHandlerConfig },
  });
  cleanup.add(() => listener.close());
  const { port } = await within(listener.listen(), 'the workers to start', 10_000);
  return { listener, port };
}

interface Visit {
  thread: number;
  reused: boolean;
  session: Buffer | undefined;
}

/** One TLS connection: which worker thread served it, whether it resumed, the ticket it got. */
function visit(port: number, pki: TestPki, session?: Buffer): Promise<Visit> {
  return within(
    new Promise<Visit>((resolve, reject) => {
      const socket = tls.connect({ port, host: '127.0.0.1', ca: pki.ca.cert, servername: 'localhost', ...(session ? { session } : {}) });
      let reused = false;
      let ticket: Buffer | undefined;
      let text = '';
      socket.on('secureConnect', () => (reused = socket.isSessionReused()));
      socket.on('session', (value: Buffer) => (ticket = value));
      socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve({ thread: Number(text.split(' ')[0]), reused, session: ticket }));
    }),
    'a TLS visit',
  );
}

describe('workers: a session issued by one worker resumes on any other (shared ticket keys)', () => {
  const cleanup = new Cleanup();
  let pki: TestPki;
  before(async () => {
    pki = await createTestPki();
  });
  afterEach(() => cleanup.run());

  it('100 of 100 resumptions succeed, on both workers, with a ticket from one of them', async function () {
    this.timeout(30_000);
    const { listener, port } = await startTlsWorkers(cleanup, pki);
    const first = await visit(port, pki);
    expect(first.session, 'a ticket').to.not.equal(undefined);
    const visits: Visit[] = [];
    for (let i = 0; i < 100; i++) visits.push(await visit(port, pki, first.session));
    expect(visits.filter((v) => v.reused).length, 'resumed').to.equal(100);
    const onOther = visits.filter((v) => v.thread !== first.thread).length;
    expect(onOther, 'resumed on the worker that did not issue the ticket').to.be.at.least(30);
    await waitUntil(() => listener.stats().handshakes.completed === 101, 'the books to count 101 handshakes');
    const stats = listener.stats();
    expect(stats.workers.map((w) => w.handshakes.completed).every((n) => n > 0)).to.equal(true);
    expect(stats.leaked).to.equal(0);
  });

  it('rotateTicketKeys(): tickets issued before no longer resume; new ones resume across workers', async function () {
    this.timeout(30_000);
    const { listener, port } = await startTlsWorkers(cleanup, pki);
    const before = await visit(port, pki);
    await listener.rotateTicketKeys();
    const old = await visit(port, pki, before.session);
    expect(old.reused, 'a ticket from before the rotation').to.equal(false);
    const issuer = await visit(port, pki);
    const resumed = [await visit(port, pki, issuer.session), await visit(port, pki, issuer.session)];
    expect(resumed.map((v) => v.reused)).to.deep.equal([true, true]);
    expect(new Set(resumed.map((v) => v.thread)).size, 'on both workers').to.equal(2);
    await expectRejection(listener.rotateTicketKeys(Buffer.alloc(47)), ErrorCodes.INVALID_OPTION);
  });
});

async function expectRejection(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e as { code?: string },
  );
  expect(error?.code).to.equal(code);
}

describe('workers: failed handshakes reach the main listener as tlsClientError, bounded', () => {
  const cleanup = new Cleanup();
  let pki: TestPki;
  before(async () => {
    pki = await createTestPki();
  });
  afterEach(() => cleanup.run());

  it('300 clients that send HTTP instead of a ClientHello: every failure is counted, at most 50 a second per worker are forwarded, the rest counted as suppressed', async function () {
    this.timeout(30_000);
    const { listener, port } = await startTlsWorkers(cleanup, pki);
    const received: Array<{ code?: string; worker?: number }> = [];
    listener.on('tlsClientError', (error: Error & { code?: string }, info: { worker?: number }) =>
      received.push({ ...(error.code !== undefined ? { code: error.code } : {}), ...(info.worker !== undefined ? { worker: info.worker } : {}) }),
    );
    const TOTAL = 300;
    await Promise.all(
      Array.from(
        { length: TOTAL },
        () =>
          new Promise<void>((resolve) => {
            const socket = net.connect(port, '127.0.0.1', () => socket.end('GET / HTTP/1.0\r\n\r\n'));
            socket.on('error', () => resolve());
            socket.on('close', () => resolve());
            socket.resume();
          }),
      ),
    );
    await waitUntil(() => listener.stats().handshakes.failed === TOTAL, () => `the books to count ${TOTAL} failures (${JSON.stringify(listener.stats().handshakes)})`);
    await waitUntil(() => received.length + listener.stats().eventsSuppressed === TOTAL, () => `every failure forwarded or counted (${received.length} + ${listener.stats().eventsSuppressed})`);
    expect(received.length).to.be.at.most(2 * 50 * 2);
    expect(received.length).to.be.at.least(50);
    expect(received.every((r) => typeof r.code === 'string' && (r.worker === 0 || r.worker === 1)), JSON.stringify(received[0])).to.equal(true);
    expect(listener.stats().leaked).to.equal(0);
  });
});

/** TLS clients that connect, read the greeting and hang up, over and over, until stopped. */
class HandshakeStorm {
  served = 0;
  failed = 0;
  private running = true;
  private readonly loops: Array<Promise<void>>;

  constructor(port: number, pki: TestPki, parallel: number) {
    this.loops = Array.from({ length: parallel }, () => this.loop(port, pki));
  }

  private async loop(port: number, pki: TestPki): Promise<void> {
    while (this.running) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = tls.connect({ port, host: '127.0.0.1', ca: pki.ca.cert, servername: 'localhost' });
        const timer = setTimeout(() => socket.destroy(), 3000);
        socket.setEncoding('utf8').on('data', (chunk: string) => {
          if (chunk.includes('\n')) {
            socket.destroy();
            resolve(true);
          }
        });
        socket.on('error', () => undefined);
        socket.on('close', () => {
          clearTimeout(timer);
          resolve(false);
        });
      });
      if (ok) this.served++;
      else this.failed++;
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

describe('workers: a worker that crashes in the middle of a handshake storm', () => {
  const cleanup = new Cleanup();
  let pki: TestPki;
  before(async () => {
    pki = await createTestPki();
    const warm = new Worker('', { eval: true });
    await once(warm, 'exit');
  });
  afterEach(() => cleanup.run());

  it('is replaced; no descriptor leaked (count back to start after close), books balanced', async function () {
    this.timeout(60_000);
    const baseline = descriptorCount();
    const listener = createListener({
      host: '127.0.0.1',
      port: 0,
      credential: pki.server,
      workers: { count: 2, module: handlerModule, workerData: { mode: 'hold' } satisfies WorkersHandlerConfig },
    });
    cleanup.add(() => listener.close());
    const events: WorkerEvent[] = [];
    listener.on('worker', (event: WorkerEvent) => events.push(event));
    listener.on('tlsClientError', () => undefined);
    const { port } = await within(listener.listen(), 'the workers to start', 10_000);
    const storm = new HandshakeStorm(port, pki, 16);
    cleanup.add(() => storm.stop());
    await waitUntil(() => storm.served >= 100, 'the storm to get going', 20_000);
    const crasher = tls.connect({ port, host: '127.0.0.1', ca: pki.ca.cert, servername: 'localhost' });
    crasher.on('error', () => undefined);
    crasher.once('data', () => crasher.write('crash\n'));
    await waitUntil(() => events.some((e) => e.type === 'exit'), 'a worker to crash', 10_000);
    await waitUntil(() => events.filter((e) => e.type === 'online').length === 3, 'its replacement to come online', 10_000);
    const servedAtReplacement = storm.served;
    await waitUntil(() => storm.served >= servedAtReplacement + 50, 'the storm to go on being served', 20_000);
    await storm.stop();
    crasher.destroy();
    await within(listener.close(), 'close()', 10_000);
    const stats = listener.stats();
    expect({ active: stats.active, leaked: stats.leaked }, JSON.stringify(stats)).to.deep.equal({ active: 0, leaked: 0 });
    expect(stats.closed).to.equal(stats.accepted);
    // Every connection has one setup outcome, those the crash cut short as aborted.
    const { completed, failed, timedOut, aborted } = stats.handshakes;
    expect(completed + failed + timedOut + aborted, JSON.stringify(stats.handshakes)).to.equal(stats.accepted);
    expect(stats.workers.map((w) => w.starts).sort()).to.deep.equal([1, 2]);
    await waitUntil(() => descriptorCount() === baseline, () => `the descriptor count to return to ${baseline} (${descriptorCount()})`);
  });
});

interface Served {
  thread: number;
  commonName: string;
}

/** A TLS client on `socket` (or a new connection): the worker thread that served it and the certificate's CN. */
function servedBy(port: number, socket?: net.Socket): Promise<Served> {
  return within(
    new Promise<Served>((resolve, reject) => {
      const client = tls.connect(socket ? { socket, rejectUnauthorized: false } : { port, host: '127.0.0.1', rejectUnauthorized: false });
      let commonName = '';
      let text = '';
      client.on('secureConnect', () => (commonName = String(client.getPeerCertificate().subject.CN)));
      client.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      client.on('error', reject);
      client.on('close', () => resolve({ thread: Number(text.split(' ')[0]), commonName }));
    }),
    'a TLS client',
  );
}

describe('workers: setCredentials switches every worker; handshakes under way finish with the old credential', () => {
  const cleanup = new Cleanup();
  let pki: TestPki;
  before(async () => {
    pki = await createTestPki();
  });
  afterEach(() => cleanup.run());

  it('after the call, connections on both workers get the new certificate; one accepted before it on each worker gets the old one', async function () {
    this.timeout(30_000);
    const { listener, port } = await startTlsWorkers(cleanup, pki);
    // Accepted before the swap, one per worker, their ClientHello sent only after it.
    const early: net.Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const socket = net.connect(port, '127.0.0.1');
      cleanup.add(() => socket.destroy());
      early.push(socket);
      await once(socket, 'connect');
      // Taken by the worker (not just queued for it): its setup has begun.
      await waitUntil(() => listener.stats().workers.filter((w) => w.active === 1 && w.queued === 0).length === i + 1, 'the connection to reach a worker');
    }

    await listener.setCredentials({ credential: pki.rsaServer });

    const after: Served[] = [];
    for (let i = 0; i < 10; i++) after.push(await servedBy(port));
    expect(after.map((s) => s.commonName)).to.deep.equal(Array(10).fill('rsa.server.test'));
    expect(new Set(after.map((s) => s.thread)).size, 'served by both workers').to.equal(2);

    const before = await Promise.all(early.map((socket) => servedBy(port, socket)));
    expect(before.map((s) => s.commonName)).to.deep.equal(['server.test', 'server.test']);
    expect(new Set(before.map((s) => s.thread)).size, 'one on each worker').to.equal(2);
    await waitUntil(() => listener.stats().active === 0, 'every connection to close');
    expect(listener.stats().handshakes.failed).to.equal(0);
    expect(listener.stats().leaked).to.equal(0);
  });

  it('a worker started after the call (a replacement) serves the new credential', async function () {
    this.timeout(30_000);
    const { listener, port } = await startTlsWorkers(cleanup, pki);
    await listener.setCredentials({ credential: pki.rsaServer });
    const victim = await servedBy(port);
    const events: WorkerEvent[] = [];
    listener.on('worker', (event: WorkerEvent) => events.push(event));
    // Ends the thread that served the next connection; the slot starts a new one.
    const crasher = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => crasher.write('crash'));
    crasher.on('error', () => undefined);
    cleanup.add(() => crasher.destroy());
    await waitUntil(() => events.some((e) => e.type === 'online'), () => `the replacement to be online (${JSON.stringify(events)})`, 10_000);
    const served: Served[] = [];
    for (let i = 0; i < 6; i++) served.push(await servedBy(port));
    expect(served.every((s) => s.commonName === 'rsa.server.test'), JSON.stringify(served)).to.equal(true);
    expect(new Set(served.map((s) => s.thread)).size).to.equal(2);
    expect(victim.commonName).to.equal('rsa.server.test');
  });

  it('refuses a SecureContext or a bad key with a coded error at the call and keeps serving the old certificate', async function () {
    this.timeout(30_000);
    const { listener, port } = await startTlsWorkers(cleanup, pki);
    const failure = (action: () => unknown): { code?: string } => {
      try {
        action();
      } catch (error) {
        return error as { code?: string };
      }
      throw new Error('expected it to throw');
    };
    expect(failure(() => listener.setCredentials({ credential: tls.createSecureContext(pki.rsaServer) })).code).to.equal(ErrorCodes.INVALID_OPTION);
    expect(failure(() => listener.setCredentials({ credential: { cert: pki.server.cert, key: 'not a key' } })).code).to.equal(ErrorCodes.INVALID_CREDENTIAL);
    expect(failure(() => listener.setCredentials({})).code).to.equal(ErrorCodes.INVALID_OPTION);
    const served = [await servedBy(port), await servedBy(port)];
    expect(served.map((s) => s.commonName)).to.deep.equal(['server.test', 'server.test']);
  });
});

describe('workers with alpn: clients that connect and close without sending a byte', () => {
  const cleanup = new Cleanup();
  let pki: TestPki;
  before(async () => {
    pki = await createTestPki();
  });
  afterEach(() => cleanup.run());

  it('are closed by the worker with no process warning (not "closed but not opened in unmanaged mode")', async () => {
    // A worker thread's stderr reaches this process's: what it wrote is caught here.
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      written.push(String(chunk));
      return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
    cleanup.add(() => {
      process.stderr.write = write;
    });
    const listener = createListener({
      host: '127.0.0.1',
      port: 0,
      credential: pki.server,
      alpn: ['h2', 'http/1.1'],
      workers: { count: 1, module: handlerModule, workerData: { mode: 'greet' } satisfies WorkersHandlerConfig },
    });
    const { port } = await within(listener.listen(), 'the worker to start', 10_000);
    const clients = 10;
    for (let i = 0; i < clients; i++) {
      const client = net.connect(port, '127.0.0.1', () => client.end());
      client.on('error', () => undefined);
      await once(client, 'close');
    }
    await waitUntil(() => listener.stats().handshakes.failed === clients, 'every connection counted as a failed handshake');
    // The worker exits with the close; its stderr is forwarded before its exit.
    await within(listener.close(), 'the listener to close', 10_000);
    expect(listener.stats().leaked).to.equal(0);
    expect(written.join('')).not.to.include('closed but not opened');
  });
});
