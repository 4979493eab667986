// The events a Listener emits and their arguments, merged into the Listener class so that
// `listener.on('tlsClientError', (err, info) => ...)` is typed, and a listener with the wrong
// arguments, or an event no Listener emits, does not compile. EventEmitter's own overloads take
// any string and `any[]`; these replace them. Kept in step with the emit() calls in listener.ts
// (which these types check too).
import type net from 'node:net';
import type { CodedError, SystemError } from './errors.js';
import type { SetupFailureInfo } from './listener.js';
import type { AdmissionReason } from './accept/admission.js';

/** Each event's arguments; `I` is the listener's connection info (ConnectionInfo for TLS). */
export interface ListenerEvents<I extends { id: number }> {
  /** Bound and accepting. */
  listening: [address: net.AddressInfo];
  /** accept() failed for one pending connection and was retried (ECONNABORTED, EPERM, ...). */
  acceptRetry: [error: SystemError];
  /** accept() paused for `delayMs` after EMFILE, ENFILE, ENOBUFS, ENOMEM or a repeating error. */
  acceptPaused: [error: SystemError, delayMs: number];
  /**
   * Accepting stopped at an admission limit (paused = true; clients wait in the backlog) or
   * resumed once a slot freed (false). Once on entering and once on leaving, never per connection.
   */
  acceptBackpressure: [paused: boolean, reason: AdmissionReason];
  /** accept() failed for good: the listener closes. */
  error: [error: SystemError];
  /** close() finished: every connection is released. */
  close: [];
  /** A connection's client failed it before its handler got it (TLS setup, idle, closed). */
  tlsClientError: [error: CodedError, info: SetupFailureInfo];
  /**
   * A handler threw or rejected (ERR_HANDLER_FAILED: info is what the handler was given), or
   * an accepted descriptor could not be wrapped in a socket (ERR_CONNECTION_SETUP_FAILED: no
   * connection info exists yet, only the id).
   */
  connectionError: [error: CodedError, info: I | { id: number }];
}

export type ListenerEventName = keyof ListenerEvents<{ id: number }>;

/** The function `on`/`once`/`off` take for event `E`. */
export type ListenerEventHandler<I extends { id: number }, E extends ListenerEventName> = (...args: ListenerEvents<I>[E]) => void;

declare module './listener.js' {
  // Same type parameters as the class (S included, unused here), so this merges into its instance type.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface Listener<S extends net.Socket, I extends { id: number }> {
    on<E extends ListenerEventName>(event: E, listener: ListenerEventHandler<I, E>): this;
    once<E extends ListenerEventName>(event: E, listener: ListenerEventHandler<I, E>): this;
    off<E extends ListenerEventName>(event: E, listener: ListenerEventHandler<I, E>): this;
    addListener<E extends ListenerEventName>(event: E, listener: ListenerEventHandler<I, E>): this;
    removeListener<E extends ListenerEventName>(event: E, listener: ListenerEventHandler<I, E>): this;
    prependListener<E extends ListenerEventName>(event: E, listener: ListenerEventHandler<I, E>): this;
    prependOnceListener<E extends ListenerEventName>(event: E, listener: ListenerEventHandler<I, E>): this;
    emit<E extends ListenerEventName>(event: E, ...args: ListenerEvents<I>[E]): boolean;
  }
}
