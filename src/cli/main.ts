#!/usr/bin/env node
// The `native-tls-listener` command. Exit status: 0 after a clean shutdown (or --help,
// --version), 1 when the server cannot start or fails while running, 2 for a bad command line.
// Start-up is all or nothing: certificates are loaded and the address bound before the banner
// is printed, and a failure at any step leaves nothing running.
import type { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type net from 'node:net';
import { parseCommandLine } from './options.js';
import { resolveServingCredentials } from './serving_credentials.js';
import type { ServingCredentials } from './serving_credentials.js';
import { createCliListener } from './server.js';
import type { CliListener } from './server.js';
import { createCliLog } from './log.js';
import type { CliLog } from './log.js';
import { describeStartupFailure, EXIT_FAILURE } from './startup_error.js';
import { CertificateReloader } from './certificate_reload.js';
import { activatedSocket } from './activation.js';
import { systemdNotify, WorkersListener } from '../index.js';
import type { TakeOver, UpgradeControl } from '../upgrade/index.js';
import { confirmToPredecessor, drainAfterHandOff, handedOff, offerToSuccessors, receiveFromPredecessor } from './upgrade.js';

const EXIT_OK = 0;
/** What a connection gets to finish after SIGINT/SIGTERM, as the original's graceful close. */
const SHUTDOWN_GRACE_MS = 5000;

function packageVersion(): string {
  // dist/src/cli/main.js -> package.json at the package root.
  const text = fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8');
  const version = (JSON.parse(text) as { version?: unknown }).version;
  return typeof version === 'string' ? version : 'unknown';
}

const out = (text: string): void => void process.stdout.write(text);
const err = (text: string): void => void process.stderr.write(text);
/** The log until the command line has chosen one: a failure before that is told as text. */
let log: CliLog = createCliLog('text', { out, err });

/** Tells a service manager (NOTIFY_SOCKET) how the server is doing; a failure is only logged. */
function notifyServiceManager(state: 'READY=1' | 'STOPPING=1'): void {
  try {
    systemdNotify(state);
  } catch (error) {
    const message = (error as Error).message.split('\n')[0] ?? '';
    log.event('warn', 'notifyFailed', `could not tell the service manager ${state}: ${message}`, { state });
  }
}

/**
 * Resolves with the signal's name (or 'upgrade' once a successor has the listening socket),
 * or rejects when the listener fails on its own.
 */
function untilStopped(listener: CliListener, control: UpgradeControl | null): Promise<NodeJS.Signals | 'upgrade'> {
  return new Promise((resolve, reject) => {
    void handedOff(control).then(resolve);
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // A second signal while closing gracefully means: do not wait.
      const force = (again: NodeJS.Signals): void => forceExit(listener, again);
      process.once('SIGINT', force);
      process.once('SIGTERM', force);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // Both kinds of listener emit 'error' with the accept error when accepting fails for good.
    const emitter: EventEmitter = listener;
    emitter.on('error', reject);
  });
}

function forceExit(listener: CliListener, signal: NodeJS.Signals): void {
  log.event('warn', 'forcedExit', `${signal} again: exiting without waiting for connections`, { signal });
  log.stopped(listener.stats(), EXIT_FAILURE);
  exitAfterFlush(EXIT_FAILURE);
}

async function run(args: readonly string[]): Promise<number> {
  const version = packageVersion();
  const parsed = parseCommandLine(args, version, { writeOut: out, writeErr: err });
  if (parsed.kind === 'exit') return parsed.code;
  const { options } = parsed;
  log = createCliLog(options.logFormat, { out, err });

  let listener: CliListener;
  let address: net.AddressInfo;
  let credentials: ServingCredentials;
  let handOver: TakeOver | undefined;
  try {
    if (options.upgrade) handOver = await receiveFromPredecessor(options);
    const passed = handOver === undefined ? activatedSocket(options.socketName) : undefined;
    credentials = await resolveServingCredentials(options);
    if (passed !== undefined) credentials.notes.push(`serving the socket systemd passed in (fd ${passed.fd}, '${passed.name}')`);
    listener = createCliListener(options, credentials, log, handOver?.fds[0] ?? passed?.fd);
    address = await listener.listen();
  } catch (error) {
    // The taken-over socket is still ours unless a listener took it: release it; the
    // predecessor, told nothing, keeps serving.
    handOver?.abandon();
    for (const fd of handOver?.fds ?? []) handOver?.closeUnadopted(fd);
    const code = (error as { code?: unknown } | null)?.code;
    log.event('error', 'startFailed', describeStartupFailure(error, options), typeof code === 'string' ? { code } : {});
    return EXIT_FAILURE;
  }
  if (handOver) {
    try {
      await confirmToPredecessor(handOver, log);
    } catch (error) {
      log.event('error', 'upgradeFailed', `upgrade failed: ${(error as Error).message}; the running server keeps serving`);
      await listener.close({ gracefulTimeout: SHUTDOWN_GRACE_MS });
      return EXIT_FAILURE;
    }
  }
  // A server with workers cannot hand its listening socket over (--upgrade is refused with --workers).
  const control = listener instanceof WorkersListener ? null : await offerToSuccessors(listener, options, log);

  // Before the banner: once it is out, a SIGHUP or a changed file is a reload.
  const reloader = new CertificateReloader(listener, credentials, log);
  // Kept until exit: a SIGHUP during shutdown reloads instead of killing the process.
  const onHangup = (): void => void reloader.reload('SIGHUP');
  process.on('SIGHUP', onHangup);
  if (options.watch) reloader.watch();
  // SIGINT and SIGTERM are ours before the banner and READY=1 go out: a supervisor (or a
  // script) that stops the server the moment it reads either must get the graceful close, not
  // the default action of a signal nobody handles yet.
  const stopped = untilStopped(listener, control);

  log.listening({
    version,
    address,
    backend: listener.backend,
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
    fingerprint: credentials.fingerprint,
    fingerprintOf: credentials.fingerprintOf,
    trustFile: credentials.trustFile,
    trustFileIsRoot: credentials.trustFileIsRoot,
    notes: credentials.notes,
    ...(credentials.https !== undefined ? { https: credentials.https } : {}),
  });

  notifyServiceManager('READY=1');

  let status = EXIT_OK;
  try {
    const reason = await stopped;
    if (reason === 'upgrade' && !(listener instanceof WorkersListener)) {
      log.event('info', 'handedOff', `upgrade: a new process accepts now; draining (connections get ${SHUTDOWN_GRACE_MS} ms to finish)`, {
        gracefulTimeoutMs: SHUTDOWN_GRACE_MS,
      });
      await drainAfterHandOff(listener, SHUTDOWN_GRACE_MS);
    } else {
      log.event('info', 'stopping', `${reason}: closing (connections get ${SHUTDOWN_GRACE_MS} ms to finish)`, {
        signal: reason,
        gracefulTimeoutMs: SHUTDOWN_GRACE_MS,
      });
    }
  } catch (error) {
    // The listener has already closed its listening socket; close what is left and report.
    const { message, code } = error as { message: string; code?: string };
    log.event('error', 'failed', `stopped by an error: ${message}`, code !== undefined ? { code } : {});
    status = EXIT_FAILURE;
  }
  reloader.close();
  notifyServiceManager('STOPPING=1');
  await control?.close();
  await listener.close({ gracefulTimeout: SHUTDOWN_GRACE_MS });
  log.stopped(listener.stats(), status);
  return status;
}

/** Exits once stdout and stderr have taken everything written to them. */
function exitAfterFlush(code: number): void {
  let pending = 2;
  const done = (): void => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

run(process.argv.slice(2)).then(exitAfterFlush, (error: unknown) => {
  log.event('error', 'unexpectedFailure', `unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  exitAfterFlush(EXIT_FAILURE);
});
