// Node enforces an HTTP/1 server's headersTimeout and requestTimeout with a timer that expires
// the entries of a list of its connections. Both are made by setupConnectionsTracking
// (lib/_http_server.js, Node 20 and 24), which runs on the server's 'listening' event. A server
// that is only handed connections never listens, so without this a client that never finishes
// its headers holds a connection forever. This runs Node's own tracking for such a server,
// without emitting 'listening' (whoever owns the server may be waiting for a real one).
import type net from 'node:net';
import { debug } from '../diagnostics.js';
import { httpServerInternals } from '../node_internals.js';
import type { HttpServerInternals } from '../node_internals.js';

// node:https and node:http2 take both from node:_http_server too, which is why it exports them.
const internals = (): HttpServerInternals | undefined => httpServerInternals() ?? undefined;

/**
 * Whether Node tracks this server's HTTP/1 connections once it listens: true for http.Server,
 * https.Server and an Http2SecureServer with allowHTTP1, false for other servers.
 */
export function tracksHttp1Connections(server: net.Server): boolean {
  const tracking = internals();
  return tracking !== undefined && server.listeners('listening').includes(tracking.setupConnectionsTracking);
}

/** headersTimeout and requestTimeout, with the server's own settings, for a server that never listens. */
export class ConnectionChecks {
  private readonly applies: boolean;
  /** The checking timer this started, while it runs. */
  private interval: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly server: net.Server) {
    this.applies = tracksHttp1Connections(server);
    // Reported by the probe (a process warning, and nodeInternals()): not silent.
    if (internals() === undefined) debug('node:_http_server has no setupConnectionsTracking: headersTimeout and requestTimeout are not enforced on routed connections');
  }

  /**
   * Call before handing the server a connection: the connections list must exist when the
   * server takes the connection, or the connection is never checked.
   */
  ensure(): void {
    // A listening server runs its own checks.
    const tracking = internals();
    if (!this.applies || this.stopped || this.server.listening || tracking === undefined) return;
    // Ours may have been replaced (the server listened, then closed, which stops its timer).
    if (this.interval !== undefined && this.currentInterval() === this.interval) return;
    tracking.setupConnectionsTracking.call(this.server);
    this.interval = this.currentInterval();
  }

  /** Stops the timer this started; a timer the server started itself by listening is left alone. */
  stop(): void {
    this.stopped = true;
    if (this.interval !== undefined && this.currentInterval() === this.interval) clearInterval(this.interval);
    this.interval = undefined;
  }

  private currentInterval(): NodeJS.Timeout | undefined {
    const tracking = internals();
    if (tracking === undefined) return undefined;
    return (this.server as unknown as Record<symbol, NodeJS.Timeout | undefined>)[tracking.kConnectionsCheckingInterval];
  }
}
