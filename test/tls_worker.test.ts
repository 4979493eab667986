// A TLS listener inside a worker thread, with clients connected (past the handshake and still
// in it) and, on the last round, clients still connecting: terminating the worker releases
// every descriptor (listening socket, accepted connections, the native acceptor's handles),
// frees the port, leaves a listener on the main thread working, and crashes nothing.
// The scenario runs in a process of its own (test/support/registry_worker_host.ts), so that a
// crash in the environment's teardown fails this test instead of killing mocha.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { WorkerHostResult } from './support/registry_worker_host.js';
import { Cleanup, within } from './support/registry_support.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const hostScript = path.join(here, 'support', 'registry_worker_host.js');
const CYCLES = 3;

interface HostRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runHost(backend: 'native' | 'js', cleanup: Cleanup): Promise<HostRun> {
  const child = spawn(process.execPath, [hostScript, backend, String(CYCLES)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<HostRun>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  cleanup.add(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await done;
  });
  return within(done, `the worker host process (${backend})`, 90_000);
}

function parseResult(run: HostRun): WorkerHostResult {
  const line = run.stdout.split('\n').find((text) => text.startsWith('RESULT '));
  if (line === undefined) {
    throw new Error(`the host printed no result (code ${run.code}, signal ${run.signal})\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  }
  return JSON.parse(line.slice('RESULT '.length)) as WorkerHostResult;
}

describe('a TLS listener in a worker thread: terminating the worker releases every descriptor and crashes nothing', function () {
  this.timeout(120_000);
  for (const backend of ['native', 'js'] as const) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      it(`${CYCLES} rounds of: 20 TLS clients served + 5 mid-handshake, terminate(); the last round under a connect flood`, async () => {
        const run = await runHost(backend, cleanup);
        expect({ code: run.code, signal: run.signal }, `the host process ended abnormally; stderr:\n${run.stderr}`).to.deep.equal({
          code: 0,
          signal: null,
        });
        const result = parseResult(run);
        expect(result.cycles).to.have.length(CYCLES);
        for (const [index, round] of result.cycles.entries()) {
          const what = `round ${index + 1} (port ${round.port})`;
          expect(round.backend, what).to.equal(backend);
          expect(round.workerErrors, `${what}: errors from the worker`).to.deep.equal([]);
          expect(
            { accepted: round.statsBefore.accepted, active: round.statsBefore.active, leaked: round.statsBefore.leaked },
            `${what}: the worker's books before terminate()`,
          ).to.deep.equal({ accepted: 25, active: 25, leaked: 0 });
          expect(round.exitCode, `${what}: the worker's exit code`).to.equal(1);
          expect(round.onPortAfterTerminate, `${what}: descriptors on the port once terminate() resolved`).to.deep.equal([]);
          expect(round.onPortAfterClients, `${what}: descriptors on the port once the clients closed`).to.deep.equal([]);
          expect(round.clientsClosed, `${what}: clients that saw their connection close`).to.equal(round.clients);
          expect(round.rebound, `${what}: the port could be bound again`).to.equal(true);
        }
        const flooded = result.cycles[CYCLES - 1];
        expect(flooded?.floodAttempts, 'connection attempts during the last terminate()').to.be.greaterThan(0);
        expect(result.fdExtra, `descriptors left open after ${CYCLES} rounds (${result.fdBaseline} -> ${result.fdAfter})`).to.deep.equal([]);
        expect(result.fdAfter).to.be.at.most(result.fdBaseline);
        expect(result.mainListenerServedAfter, 'the main-thread listener still served a client').to.equal(true);
        expect(result.mainListenerStats.leaked).to.equal(0);
      });
    });
  }
});
