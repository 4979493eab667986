// The listener the CLI runs: the original router's split in the flesh. Connections served by
// the SNI credential (browsers, curl https://localhost) go to HTTPS, the others to the line
// protocol. Listener events are reported through the CLI's log, one line each. With --workers
// the same handlers run in each worker thread (./worker.ts) and the main thread answers their
// requests for the listener's statistics (./stats_channel.ts).
import type { EventEmitter } from 'node:events';
import { createListener } from '../index.js';
import type { CodedError, ListenerOptions, SystemError, TLSListener, WorkerEvent, WorkersListener } from '../index.js';
import type { CliOptions } from './options.js';
import type { ServingCredentials } from './serving_credentials.js';
import { createLineProtocolHandler } from './line_protocol.js';
import { createWebHandler } from './web.js';
import { answerStatsRequests } from './stats_channel.js';
import type { CliLog } from './log.js';

/** One thread, or worker threads fed by the native acceptor (--workers). */
export type CliListener = TLSListener | WorkersListener;

/** What each worker thread imports: the line protocol (default export) and `http`. */
const WORKER_MODULE = new URL('./worker.js', import.meta.url);

/**
 * `listenFd`: a listening socket to adopt instead of binding host and port: one systemd passed
 * in, or one taken over from a predecessor (--upgrade).
 */
export function createCliListener(options: CliOptions, credentials: ServingCredentials, log: CliLog, listenFd?: number): CliListener {
  const listenerOptions: ListenerOptions = {
    ...(listenFd !== undefined ? { fd: listenFd } : { host: options.host, port: options.port }),
    credential: credentials.credential,
    requestClientCert: options.requestClientCert,
    ...options.production,
  };
  if (credentials.sniCredential !== undefined) listenerOptions.sniCredential = credentials.sniCredential;
  if (options.alpn !== undefined) listenerOptions.alpn = options.alpn;
  if (options.handshakeTimeout !== undefined) listenerOptions.handshakeTimeout = options.handshakeTimeout;
  if (options.backend !== undefined) listenerOptions.backend = options.backend;

  const listener = options.workers !== undefined ? createWorkersListener(listenerOptions, options.workers, log) : createSingleThreadListener(listenerOptions);
  reportEvents(listener, options, log);
  return listener;
}

function createSingleThreadListener(listenerOptions: ListenerOptions): TLSListener {
  // The handlers read the listener's statistics; they run only once it exists and listens.
  listenerOptions.http = createWebHandler({
    get backend() {
      return listener.backend;
    },
    stats: () => listener.stats(),
    metrics: () => listener.metrics(),
  });
  const listener: TLSListener = createListener(listenerOptions, createLineProtocolHandler(() => listener.stats()));
  return listener;
}

function createWorkersListener(listenerOptions: ListenerOptions, count: number, log: CliLog): WorkersListener {
  const listener = createListener({ ...listenerOptions, workers: { count, module: WORKER_MODULE } });
  const answering = answerStatsRequests(listener);
  listener.once('close', () => answering.close());
  listener.on('worker', (event: WorkerEvent) => {
    if (event.type !== 'exit') return;
    const why = event.error !== undefined ? `: ${event.error.message}` : '';
    const next = event.restartInMs === null ? 'not replaced' : `replaced in ${event.restartInMs} ms`;
    log.event('warn', 'workerExit', `worker ${event.id} (thread ${event.threadId}) exited with code ${event.exitCode}${why}; ${next}`, {
      worker: event.id,
      threadId: event.threadId,
      exitCode: event.exitCode,
      restartInMs: event.restartInMs,
      ...(event.error !== undefined ? { error: event.error.message } : {}),
    });
  });
  return listener;
}

/** The events both kinds of listener emit with the same arguments (a worker's info adds `worker`). */
function reportEvents(listener: EventEmitter, options: CliOptions, log: CliLog): void {
  listener.on('acceptRetry', (error: SystemError) =>
    log.event('warn', 'acceptRetry', `accept retried after ${error.message}`, { code: error.code, errno: error.errno }),
  );
  listener.on('acceptPaused', (error: SystemError, delayMs: number) =>
    log.event('warn', 'acceptPaused', `accepting paused for ${delayMs} ms after ${error.message}`, { code: error.code, errno: error.errno, delayMs }),
  );
  listener.on('connectionError', (error: CodedError, info: { id: number; worker?: number }) =>
    log.event('error', 'connectionError', error.message, { code: error.code, connection: info.id, ...workerField(info) }),
  );
  if (options.logTLSErrors) {
    // The CLI logs these itself (not with the library's logTLSErrors) so they follow --log-format.
    listener.on('tlsClientError', (error: CodedError, info: { id: number; remoteAddress?: string; remotePort?: number; worker?: number }) => {
      const from = info.remoteAddress ?? '?';
      const which = info.worker !== undefined ? `${info.id} of worker ${info.worker}` : `${info.id}`;
      log.event('warn', 'tlsClientError', `TLS setup of connection ${which} from ${from} failed: ${error.code} ${error.message}`, {
        code: error.code,
        connection: info.id,
        ...(info.remoteAddress !== undefined ? { remoteAddress: info.remoteAddress } : {}),
        ...(info.remotePort !== undefined ? { remotePort: info.remotePort } : {}),
        ...workerField(info),
      });
    });
  }
}

/** Connection ids count per worker: the worker tells which connection it is. */
function workerField(info: { worker?: number }): { worker?: number } {
  return info.worker !== undefined ? { worker: info.worker } : {};
}
