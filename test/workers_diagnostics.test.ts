// diagnostics_channel with `workers`: what each worker's listener publishes reaches the main
// thread's subscribers (with `listener` and `worker`), bounded, and only while someone listens.
import diagnosticsChannel from 'node:diagnostics_channel';
import tls from 'node:tls';
import { expect } from 'chai';
import { createListener, createLocalTCPListener } from '../src/index.js';
import type { WorkersListener } from '../src/index.js';
import type { WorkersHandlerConfig } from './fixtures/workers_handler.js';
import { compiledFixture } from './support/paths.js';
import { createTestPki } from './support/pki.js';
import { Cleanup, connect, delay, waitUntil, within } from './support/sockets.js';

const handlerModule = compiledFixture('workers_handler');
const greet = { mode: 'greet' } satisfies WorkersHandlerConfig;

interface Seen {
  listener?: unknown;
  worker?: number;
  id?: number;
  error?: unknown;
}

/** What the main thread's subscriber to `name` sees (unsubscribed by `cleanup`, or earlier by `stop`). */
function subscribe(cleanup: Cleanup, name: string): Seen[] & { stop(): void } {
  const seen: Seen[] = [];
  const subscriber = (message: unknown): void => {
    seen.push(message as Seen);
  };
  diagnosticsChannel.subscribe(name, subscriber);
  const stop = (): void => void diagnosticsChannel.unsubscribe(name, subscriber);
  cleanup.add(stop);
  return Object.assign(seen, { stop });
}

describe("workers: diagnostics_channel messages from workers reach the main thread's subscribers, bounded", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('handshake-done and connection-close from both workers, with listener and worker; a TLS failure as handshake-failed with its error', async function () {
    this.timeout(30_000);
    const pki = await createTestPki();
    const done = subscribe(cleanup, 'native-tls-listener:handshake-done');
    const closed = subscribe(cleanup, 'native-tls-listener:connection-close');
    const failed = subscribe(cleanup, 'native-tls-listener:handshake-failed');
    const listener: WorkersListener = createListener({ port: 0, host: '127.0.0.1', credential: pki.server, workers: { count: 2, module: handlerModule, workerData: greet } });
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the workers to start', 10_000);
    for (let i = 0; i < 6; i++) {
      await within(
        new Promise<void>((resolve, reject) => {
          const client = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
          client.on('error', reject).on('close', () => resolve()).resume();
        }),
        'a TLS client',
      );
    }
    const plain = await connect(port);
    plain.socket.end('GET / HTTP/1.0\r\n\r\n');
    await plain.whenClosed();
    await waitUntil(() => done.length === 6 && closed.length === 7 && failed.length === 1, () => `6 done, 7 closed, 1 failed (${done.length}, ${closed.length}, ${failed.length})`);
    expect(done.every((m) => m.listener === listener && typeof m.id === 'number')).to.equal(true);
    expect(new Set(done.map((m) => m.worker)), 'from both workers').to.deep.equal(new Set([0, 1]));
    expect(failed[0]?.error).to.be.instanceOf(Error);
    expect((failed[0]?.error as { code?: string }).code).to.be.a('string');
  });

  it('300 connections: at most 50 accept messages a second per worker are forwarded, the rest counted as suppressed; none once nobody listens', async function () {
    this.timeout(30_000);
    const accepted = subscribe(cleanup, 'native-tls-listener:accept');
    const listener: WorkersListener = createLocalTCPListener({ port: 0, workers: { count: 2, module: handlerModule, workerData: greet } });
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the workers to start', 10_000);
    const started = Date.now();
    const clients = await Promise.all(Array.from({ length: 300 }, () => connect(port)));
    await Promise.all(clients.map((c) => c.whenClosed()));
    const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
    await waitUntil(() => accepted.length + listener.stats().eventsSuppressed === 300, () => `300 forwarded or suppressed (${accepted.length} + ${listener.stats().eventsSuppressed})`, 5000);
    expect(accepted.length).to.be.at.most(2 * 50 * seconds);
    expect(accepted.length).to.be.at.least(50);
    // Nobody listens any more: within a poll the workers stop forwarding.
    accepted.stop();
    const before = accepted.length;
    await delay(1500);
    const suppressedBefore = listener.stats().eventsSuppressed;
    await Promise.all((await Promise.all(Array.from({ length: 20 }, () => connect(port)))).map((c) => c.whenClosed()));
    await delay(1200);
    expect(accepted.length).to.equal(before);
    expect(listener.stats().eventsSuppressed).to.equal(suppressedBefore);
  });
});
