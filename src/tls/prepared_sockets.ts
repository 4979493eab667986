// TLSSockets made ahead: with `alpn`, a connection accepted before its ClientHello came (one
// client at a time, usually: the accept wins the race against the client's key share) would
// have the server sleep until the hello arrives, wake, and only then build the connection's
// TLSSocket. Building it while the hello is on its way instead saves that sleep and wake-up and
// has the socket ready when the hello comes: the connection completes sooner (README "Events",
// the hello stage, has the figures). The socket is made with the context the last peeked hello
// was served with and no protocol; when the hello is in, it is used if the hello chose that
// context (its protocol is set then), else dropped for a new one (src/tls/tls_setup.ts
// openPeeked).
//
// A prepared socket owns no descriptor until it is opened on one, and destroying it closes
// only its own handle. At most MAX_PREPARED_SOCKETS exist at once: clients that never send a
// hello hold no more than that many.
import type tls from 'node:tls';
import { prepareTlsSocket } from './direct_tls_socket.js';

/** A TLSSocket made while its connection's hello is on its way, and the context it was made with. */
export interface PreparedSocket {
  readonly socket: tls.TLSSocket;
  readonly context: tls.SecureContext | undefined;
}

const MAX_PREPARED_SOCKETS = 16;

/** The listener's prepared sockets: how many are out, and which context to guess next. */
export class PreparedSockets {
  /** Made and not yet used or discarded. */
  private outstanding = 0;
  /** Whether the last peeked hello was served with the SNI context. */
  private lastServedSni = false;

  /** The guess for the next socket: the SNI context if the last peeked hello was served with it. */
  get guessSni(): boolean {
    return this.lastServedSni;
  }

  /** A socket made with `options` (no protocol); undefined where this Node cannot, or when MAX_PREPARED_SOCKETS are out. */
  make(options: tls.TLSSocketOptions): PreparedSocket | undefined {
    if (this.outstanding >= MAX_PREPARED_SOCKETS) return undefined;
    const socket = prepareTlsSocket(options);
    if (socket === null) return undefined;
    this.outstanding += 1;
    return { socket, context: options.secureContext };
  }

  /** A peeked hello was served with the SNI context (`sni`) or the primary one. */
  served(sni: boolean): void {
    this.lastServedSni = sni;
  }

  /** `prepared`'s socket when it was made with `context`, else undefined (and it is destroyed). */
  take(prepared: PreparedSocket, context: tls.SecureContext | undefined): tls.TLSSocket | undefined {
    this.outstanding -= 1;
    if (prepared.context === context) return prepared.socket;
    prepared.socket.destroy();
    return undefined;
  }

  /** A prepared socket its connection will not use (the setup ended first, or nothing can use it). */
  discard(prepared: PreparedSocket): void {
    this.outstanding -= 1;
    prepared.socket.destroy();
  }
}
