// One connection's TLS setup, from TlsSetup.start() to done or fail, with no closure made per
// connection (as src/connection_lifecycle.ts): its state is one Handshake object, carried by
// its sockets under a symbol, and the sockets' listeners and its deadline are module-level
// functions that find it there.
import type net from 'node:net';
import type tls from 'node:tls';
import type { SetupDone, SetupFail } from '../connection_lifecycle.js';
import type { ConnectionRecord } from '../registry.js';
import { codedError, ErrorCodes } from '../errors.js';
import type { CodedError } from '../errors.js';
import type { ClientHelloSummary } from './client_hello_reader.js';
import type { PeekedClientHello, PeekedHelloClient } from './peeked_hello.js';
import { SetupDeadlines } from './setup_deadlines.js';
import type { SetupDeadline } from './setup_deadlines.js';
import type { PreparedSocket } from './prepared_sockets.js';
import type { ConnectionInfo, HelloDecision, ServingContexts, TlsSetup } from './tls_setup.js';

const kHandshake = Symbol('native-tls-listener.tls-handshake');

type Carrier = net.Socket & { [kHandshake]?: Handshake };

export function carry(socket: net.Socket, handshake: Handshake): void {
  (socket as Carrier)[kHandshake] = handshake;
}

function asCoded(error: unknown): CodedError {
  if (error instanceof Error && typeof (error as Partial<CodedError>).code === 'string') return error as CodedError;
  return codedError(ErrorCodes.CONNECTION_SETUP_FAILED, error instanceof Error ? error.message : String(error), { cause: error });
}

/** The socket under the handshake closed before it finished. */
export function onSetupClose(this: Carrier): void {
  const handshake = this[kHandshake];
  handshake?.failWith(codedError(ErrorCodes.CLIENT_CLOSED, `the client closed connection ${handshake.record.id} before TLS setup finished`));
}

export function onSetupError(this: Carrier, error: unknown): void {
  this[kHandshake]?.failWith(error);
}

function onSecure(this: Carrier): void {
  this[kHandshake]?.secure(this as tls.TLSSocket);
}

/** handshakeTimeout passed (SetupDeadlines calls it with the handshake). */
export function onHandshakeDeadline(handshake: Handshake): void {
  if (handshake.finish()) handshake.fail(handshake.record, handshake.setup.timedOut(handshake.record), 'timedOut');
}

export class Handshake implements PeekedHelloClient {
  finished = false;
  deadline: SetupDeadline | undefined;
  /** The TLSSocket, once there is one. */
  served: tls.TLSSocket | undefined;
  /** What the ClientHello decided, when one was read before the TLSSocket was made. */
  hello: HelloDecision | undefined;
  /** A TLSSocket made while the peeked hello is on its way (TlsSetup.prepareSocket), until it is opened or discarded. */
  private prepared: PreparedSocket | undefined;

  constructor(
    readonly setup: TlsSetup,
    /** The socket start() got: the TLSSocket itself, a net.Socket, or a PeekedHello. */
    readonly socket: net.Socket,
    readonly record: ConnectionRecord,
    /** Read once, when the setup starts: a reload does not change a handshake under way. */
    readonly contexts: Readonly<ServingContexts>,
    readonly done: SetupDone<tls.TLSSocket, ConnectionInfo>,
    readonly fail: SetupFail,
  ) {}

  /** Ends the setup once (its deadline is cancelled). False if it had ended already. */
  finish(): boolean {
    if (this.finished) return false;
    this.finished = true;
    if (this.deadline !== undefined) SetupDeadlines.cancel(this.deadline);
    if (this.prepared !== undefined) {
      this.setup.discardPrepared(this.prepared);
      this.prepared = undefined;
    }
    return true;
  }

  /**
   * The setup succeeded: its listeners leave the sockets the handler gets. (After a failure
   * they stay, and do nothing: an 'error' while the sockets are destroyed still has a listener.)
   */
  release(): void {
    this.socket.off('close', onSetupClose);
    this.socket.off('error', onSetupError);
    const served = this.served;
    if (served !== undefined) {
      served.off('secure', onSecure);
      if (served !== this.socket) served.off('error', onSetupError);
    }
  }

  failWith(error: unknown): void {
    if (this.finish()) this.fail(this.record, asCoded(error), 'failed');
  }

  /** The handshake runs on `tlsSocket` now. */
  listen(tlsSocket: tls.TLSSocket, hello: HelloDecision | undefined): void {
    this.served = tlsSocket;
    this.hello = hello;
    this.record.served = tlsSocket;
    if (tlsSocket !== this.socket) {
      carry(tlsSocket, this);
      tlsSocket.on('error', onSetupError);
    }
    tlsSocket.on('secure', onSecure);
  }

  secure(tlsSocket: tls.TLSSocket): void {
    if (!this.finished) this.setup.secured(this, tlsSocket);
  }

  /**
   * The JS reader's hello (undefined: none was needed, or the bytes were not one it parses,
   * which OpenSSL then answers): the TLSSocket goes on the net.Socket.
   */
  helloRead(summary: ClientHelloSummary | undefined): void {
    if (this.finished) return;
    const made = this.setup.wrapSocket(this.socket, summary, this.contexts);
    this.listen(made.tlsSocket, made.hello);
  }

  // PeekedHelloClient: the peeked hello's decision is made once, when the socket is opened.
  prepare(): void {
    if (!this.finished && this.prepared === undefined) this.prepared = this.setup.prepareSocket(this.contexts);
  }

  openSocket(fd: number, hello: PeekedClientHello | undefined, taken: Buffer | undefined): { served: tls.TLSSocket; bottom: net.Socket } {
    this.hello = this.setup.decidePeeked(hello, this.contexts);
    const prepared = this.prepared;
    this.prepared = undefined;
    return this.setup.openPeeked(fd, this.hello, this.contexts, taken, prepared);
  }

  opened(served: tls.TLSSocket): void {
    this.listen(served, this.hello);
  }
}
