// What tls.Server does for each of its sockets once the handshake is done, and a TLSSocket
// built by hand never gets. Node's TLSSocket keeps "control" of TLS errors until it is
// released: until then they only reach an internal '_tlsError' event, so the renegotiation
// limit (tls.CLIENT_RENEG_LIMIT per tls.CLIENT_RENEG_WINDOW, ERR_TLS_SESSION_ATTACK) and
// fatal errors after the handshake (a forged record) reach nobody, and the connection stays
// open. tls.Server releases control after 'secure' (`_releaseControl()` in Node's
// lib/_tls_wrap.js, lib/internal/tls/wrap.js from Node 22); this does the same, and ends the
// connection on such an error, which then reaches the handler's socket as an 'error'.
import type tls from 'node:tls';
import { releaseTlsControl } from '../node_internals.js';

function destroyOnError(this: tls.TLSSocket): void {
  this.destroy();
}

/**
 * Call once setup has succeeded, before the handler adds its own listeners: this listener runs
 * first, so the handler sees the 'error' of a connection that is already being destroyed.
 */
export function releaseControlAfterSetup(socket: tls.TLSSocket): void {
  socket.on('error', destroyOnError);
  // Without Node's method (src/node_internals.ts), the errors end the socket from '_tlsError'.
  releaseTlsControl(socket);
}
