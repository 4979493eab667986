// The listener the CLI runs: the original router's split in the flesh. Connections served by
// the SNI credential (browsers, curl https://localhost) go to HTTPS, the others to the line
// protocol. Listener events are reported on stderr, the way the original logs them.
import { createListener } from '../index.js';
import type { ListenerOptions, TLSListener } from '../index.js';
import type { CliOptions } from './options.js';
import type { ServingCredentials } from './serving_credentials.js';
import { createLineProtocolHandler } from './line_protocol.js';
import { createWebHandler } from './web.js';

export type Log = (line: string) => void;

export function createCliListener(options: CliOptions, credentials: ServingCredentials, log: Log): TLSListener {
  const listenerOptions: ListenerOptions = {
    host: options.host,
    port: options.port,
    credential: credentials.credential,
    requestClientCert: options.requestClientCert,
    logTLSErrors: options.logTLSErrors,
  };
  if (credentials.sniCredential !== undefined) listenerOptions.sniCredential = credentials.sniCredential;
  if (options.alpn !== undefined) listenerOptions.alpn = options.alpn;
  if (options.handshakeTimeout !== undefined) listenerOptions.handshakeTimeout = options.handshakeTimeout;
  if (options.backend !== undefined) listenerOptions.backend = options.backend;

  // The handlers read the listener's statistics; they run only once it exists and listens.
  listenerOptions.http = createWebHandler({
    get backend() {
      return listener.backend;
    },
    stats: () => listener.stats(),
    metrics: () => listener.metrics(),
  });
  const listener: TLSListener = createListener(listenerOptions, createLineProtocolHandler(() => listener.stats()));

  listener.on('acceptRetry', (error: Error) => log(`accept retried after ${error.message}`));
  listener.on('acceptPaused', (error: Error, delayMs: number) => log(`accepting paused for ${delayMs} ms after ${error.message}`));
  listener.on('connectionError', (error: Error) => log(error.message));
  return listener;
}
