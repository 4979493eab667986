// A Listener's events are typed: each listener function gets its event's arguments, not `any`.
// Most of this file is checked by tsc before any test runs (`pretest`): a wrong type fails the
// build, and each `@ts-expect-error` line proves a wrong argument type is rejected (were the
// arguments `any`, the line would compile and tsc would report the directive unused). The
// tests below then show the same types hold at run time, on both backends, and that a
// TypeScript consumer of the compiled package sees them.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { createLocalTCPListener } from '../src/index.js';
import type {
  CodedError,
  ConnectionInfo,
  ListenerEvents,
  SetupFailureInfo,
  SystemError,
  TCPConnectionInfo,
  TCPListener,
  TLSListener,
} from '../src/index.js';
import { repoRoot } from './support/paths.js';
import { Cleanup, connect } from './support/sockets.js';

const execFileAsync = promisify(execFile);

/** True only when A and B are the same type (and neither is `any` unless both are). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

function assertType<T extends true>(_proof: T): void {}

/** Compiles only when `value`'s type is exactly `Expected` (so `any` does not pass). */
function hasType<Expected>(): <Actual>(value: Actual, proof: Equal<Actual, Expected>) => void {
  return () => undefined;
}

/** Never called: its body is what tsc checks. */
export function typedEventsCompile(tlsListener: TLSListener, tcpListener: TCPListener): void {
  tlsListener.on('tlsClientError', (error, info) => {
    hasType<CodedError>()(error, true);
    hasType<SetupFailureInfo>()(info, true);
  });
  tlsListener.once('connectionError', (error, info) => {
    hasType<CodedError>()(error, true);
    hasType<ConnectionInfo | { id: number }>()(info, true);
  });
  tcpListener.on('connectionError', (_error, info) => hasType<TCPConnectionInfo | { id: number }>()(info, true));
  tcpListener.on('listening', (address) => hasType<net.AddressInfo>()(address, true));
  tcpListener.on('acceptRetry', (error) => hasType<SystemError>()(error, true));
  tcpListener.on('acceptPaused', (error, delayMs) => {
    hasType<SystemError>()(error, true);
    hasType<number>()(delayMs, true);
  });
  tcpListener.on('error', (error) => hasType<SystemError>()(error, true));
  const onClose = (): void => undefined;
  tcpListener.on('close', onClose).off('close', onClose);
  assertType<Equal<ListenerEvents<ConnectionInfo>['acceptPaused'], [error: SystemError, delayMs: number]>>(true);

  // @ts-expect-error tlsClientError's info is a SetupFailureInfo, not a number
  tlsListener.on('tlsClientError', (_error, _info: number) => undefined);
  // @ts-expect-error acceptPaused's delay is a number of milliseconds, not a string
  tcpListener.once('acceptPaused', (_error, _delayMs: string) => undefined);
  // @ts-expect-error 'close' has no arguments
  tcpListener.on('close', (_reason: Error) => undefined);
  // @ts-expect-error no Listener emits 'conection' (a typo is caught)
  tcpListener.on('conection', () => undefined);
  // @ts-expect-error off() checks the function like on()
  tcpListener.off('listening', (_address: string) => undefined);
  // @ts-expect-error emit() checks the arguments it is given
  tcpListener.emit('acceptPaused', new Error('EMFILE'), 'soon');
}

describe('typed listener events', function () {
  this.timeout(60_000);
  const cleanup = new Cleanup();
  afterEach(async function () {
    await cleanup.run();
  });

  for (const backend of ['native', 'js'] as const) {
    it(`deliver the arguments their types name (${backend} backend)`, async function () {
      const listener = createLocalTCPListener({ port: 0, backend }, (socket) => {
        throw new Error(`handler of ${socket.remotePort ?? '?'} fails`);
      });
      cleanup.add(() => listener.close());
      const listening = new Promise<net.AddressInfo>((resolve) => listener.once('listening', resolve));
      const failed = new Promise<{ error: CodedError; info: TCPConnectionInfo | { id: number } }>((resolve) =>
        listener.once('connectionError', (error, info) => resolve({ error, info })),
      );
      const closed = new Promise<void>((resolve) => listener.once('close', resolve));
      const { port } = await listener.listen();
      expect((await listening).port).to.equal(port);
      const client = await connect(port);
      cleanup.add(() => client.destroy());
      const { error, info } = await failed;
      expect(error.code).to.equal('ERR_HANDLER_FAILED');
      expect(info.id).to.be.a('number');
      await listener.close();
      await closed;
    });
  }

  it('reach a TypeScript consumer of the compiled package', async function () {
    // A project that installs the package (here: a symlink to this one) and compiles against its
    // published declarations, dist/src/*.d.ts, through the exports map.
    const consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-typed-consumer-'));
    cleanup.add(() => fs.rmSync(consumer, { recursive: true, force: true }));
    fs.mkdirSync(path.join(consumer, 'node_modules', '@types'), { recursive: true });
    fs.symlinkSync(repoRoot, path.join(consumer, 'node_modules', 'native-tls-listener'), 'dir');
    fs.symlinkSync(path.join(repoRoot, 'node_modules', '@types', 'node'), path.join(consumer, 'node_modules', '@types', 'node'), 'dir');
    fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
    fs.writeFileSync(
      path.join(consumer, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, types: ['node'] }, files: ['consumer.ts'] }),
    );
    fs.writeFileSync(
      path.join(consumer, 'consumer.ts'),
      [
        "import { createLocalTCPListener } from 'native-tls-listener';",
        "import type { SetupFailureInfo } from 'native-tls-listener';",
        "const listener = createLocalTCPListener({ port: 0 }, (socket) => {\n  socket.end();\n});",
        "listener.on('tlsClientError', (error, info: SetupFailureInfo) => console.log(error.code, info.id));",
        "listener.on('acceptPaused', (error, delayMs: number) => console.log(error.errno, delayMs));",
        '// @ts-expect-error delayMs is a number',
        "listener.on('acceptPaused', (_error, _delayMs: string) => undefined);",
        '',
      ].join('\n'),
    );
    const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const outcome = await execFileAsync(process.execPath, [tsc, '-p', consumer], { cwd: consumer, timeout: 50_000 }).then(
      () => ({ ok: true, output: '' }),
      (error: { stdout?: string }) => ({ ok: false, output: error.stdout ?? String(error) }),
    );
    expect(outcome.output).to.equal('');
    expect(outcome.ok).to.equal(true);
  });
});
