#!/usr/bin/env node
// The `native-tls-listener` command. Exit status: 0 after a clean shutdown (or --help,
// --version), 1 when the server cannot start or fails while running, 2 for a bad command line.
// Start-up is all or nothing: certificates are loaded and the address bound before the banner
// is printed, and a failure at any step leaves nothing running.
import fs from 'node:fs';
import type net from 'node:net';
import { parseCommandLine } from './options.js';
import { resolveServingCredentials } from './serving_credentials.js';
import type { ServingCredentials } from './serving_credentials.js';
import { createCliListener } from './server.js';
import { createCliLog } from './log.js';
import type { CliLog } from './log.js';
import { describeStartupFailure, EXIT_FAILURE } from './startup_error.js';
import type { TLSListener } from '../index.js';

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

/** Resolves with the signal's name, or rejects when the listener fails on its own. */
function untilStopped(listener: TLSListener): Promise<NodeJS.Signals> {
  return new Promise((resolve, reject) => {
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
    listener.on('error', reject);
  });
}

function forceExit(listener: TLSListener, signal: NodeJS.Signals): void {
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

  let listener: TLSListener;
  let address: net.AddressInfo;
  let credentials: ServingCredentials;
  try {
    credentials = await resolveServingCredentials(options);
    listener = createCliListener(options, credentials, log);
    address = await listener.listen();
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    log.event('error', 'startFailed', describeStartupFailure(error, options), typeof code === 'string' ? { code } : {});
    return EXIT_FAILURE;
  }

  log.listening({
    version,
    address,
    backend: listener.backend,
    fingerprint: credentials.fingerprint,
    fingerprintOf: credentials.fingerprintOf,
    trustFile: credentials.trustFile,
    trustFileIsRoot: credentials.trustFileIsRoot,
    notes: credentials.notes,
    ...(credentials.https !== undefined ? { https: credentials.https } : {}),
  });

  let status = EXIT_OK;
  try {
    const signal = await untilStopped(listener);
    log.event('info', 'stopping', `${signal}: closing (connections get ${SHUTDOWN_GRACE_MS} ms to finish)`, {
      signal,
      gracefulTimeoutMs: SHUTDOWN_GRACE_MS,
    });
  } catch (error) {
    // The listener has already closed its listening socket; close what is left and report.
    const { message, code } = error as { message: string; code?: string };
    log.event('error', 'failed', `stopped by an error: ${message}`, code !== undefined ? { code } : {});
    status = EXIT_FAILURE;
  }
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
