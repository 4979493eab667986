// The listener the CLI runs: the original router's split in the flesh. Connections served by
// the SNI credential (browsers, curl https://localhost) go to HTTPS, the others to the line
// protocol. Listener events are reported through the CLI's log, one line each.
import { createListener } from '../index.js';
import type { ListenerOptions, TLSListener } from '../index.js';
import type { CliOptions } from './options.js';
import type { ServingCredentials } from './serving_credentials.js';
import { createLineProtocolHandler } from './line_protocol.js';
import { createWebHandler } from './web.js';
import type { CliLog } from './log.js';

/**
 * `listenFd`: a listening socket to adopt instead of binding host and port: one systemd passed
 * in, or one taken over from a predecessor (--upgrade).
 */
export function createCliListener(options: CliOptions, credentials: ServingCredentials, log: CliLog, listenFd?: number): TLSListener {
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

  // The handlers read the listener's statistics; they run only once it exists and listens.
  listenerOptions.http = createWebHandler({
    get backend() {
      return listener.backend;
    },
    stats: () => listener.stats(),
    metrics: () => listener.metrics(),
  });
  const listener: TLSListener = createListener(listenerOptions, createLineProtocolHandler(() => listener.stats()));

  listener.on('acceptRetry', (error) =>
    log.event('warn', 'acceptRetry', `accept retried after ${error.message}`, { code: error.code, errno: error.errno }),
  );
  listener.on('acceptPaused', (error, delayMs) =>
    log.event('warn', 'acceptPaused', `accepting paused for ${delayMs} ms after ${error.message}`, { code: error.code, errno: error.errno, delayMs }),
  );
  listener.on('connectionError', (error, info) => log.event('error', 'connectionError', error.message, { code: error.code, connection: info.id }));
  if (options.logTLSErrors) {
    // The CLI logs these itself (not with the library's logTLSErrors) so they follow --log-format.
    listener.on('tlsClientError', (error, info) => {
      const from = info.remoteAddress ?? '?';
      log.event('warn', 'tlsClientError', `TLS setup of connection ${info.id} from ${from} failed: ${error.code} ${error.message}`, {
        code: error.code,
        connection: info.id,
        ...(info.remoteAddress !== undefined ? { remoteAddress: info.remoteAddress } : {}),
        ...(info.remotePort !== undefined ? { remotePort: info.remotePort } : {}),
      });
    });
  }
  return listener;
}
