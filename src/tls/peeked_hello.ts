// The ClientHello stage on one socket: the accepted descriptor waits in C++ (native/hello_peek.h)
// until its receive queue holds the whole ClientHello, which is peeked, never read; then one
// TLSSocket is opened on the descriptor with the context and the ALPN protocol the hello asks
// for, and its OpenSSL reads the client's bytes exactly as they were sent. A hello the parser
// cannot make sense of reaches OpenSSL untouched and gets OpenSSL's own answer.
//
// Until then the connection is a PeekedHello: what the registry and the connection lifecycle
// hold as the connection's socket (they use only its events, destroy() and its peer), a few
// fields, no stream and no buffer; the client's bytes stay in the kernel.
//
// Descriptor ownership: the adopter gives the descriptor to the native peeker (watch); its
// callback gives it back to this PeekedHello ('held'), which opens the TLSSocket on it at once
// if the setup is waiting ('open': the TLSSocket's handle owns it), else when the setup starts.
// destroy() closes it wherever it is: cancel() in C++ while peeking, closeHeld() while held,
// the socket's own destroy() once open. Whichever way, 'close' is emitted once, after the
// descriptor is closed.
//
// Behind a PROXY balancer (adoptBehindProxy) the wait starts with the header: C++ reads exactly
// its bytes and hands the descriptor back ('held'); the PROXY stage (src/proxy/proxy_setup.ts)
// parses them, then the TLS stage has the hello peeked as above (peekHello: 'peeking' again),
// unless the hello was queued whole behind the header: C++ parsed it from the header's own peek,
// and peekHello settles with it at once.
// When C++ cannot find the header's end, the descriptor goes to a net.Socket (adoptSocket,
// 'open') and the header and the hello are read in JS, as where there is no addon.
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import type tls from 'node:tls';
import type { HelloVerdict, PeerAddress } from '../native/binding.js';
import { adoptDescriptor } from '../accept/descriptor_handoff.js';
import { keep, unkeep } from '../kept_listener.js';
import { primePeerAddress } from '../accept/peer_address.js';

/** What the peeked ClientHello asks for; undefined when it goes to OpenSSL unparsed. */
export interface PeekedClientHello {
  /** The host name, when the client sent a non-empty one. */
  servername?: string;
  /** The first of the client's protocols in the server's list, and in the list for SNI clients. */
  protocol?: string;
  sniProtocol?: string;
}


/** Where a waiting connection's descriptor is: the stage that can cancel the wait, or start the hello's (src/tls/hello_stage.ts). */
export interface PeekCanceller {
  cancel(token: number): void;
  /** Watches a held descriptor for its hello: the new wait's token; throws leaving it held. */
  watchHello(connection: PeekedHello): number;
  /** Closes a held descriptor (one no wait and no socket has). */
  closeHeld(fd: number): void;
}

/** The PROXY header C++ read off the socket; undefined when it could not find its end (JS reads it). */
export type HeaderOutcome = { header: Buffer } | undefined;

/** Who waits for the hello (the connection's TLS setup, src/tls/tls_handshake.ts). */
export interface PeekedHelloClient {
  /**
   * Opens the connection's socket on the descriptor, `taken` (bytes the native peeker read off
   * it) read first; throws leaving `fd` open and unowned.
   */
  openSocket(fd: number, hello: PeekedClientHello | undefined, taken: Buffer | undefined): { served: tls.TLSSocket; bottom: net.Socket };
  /** The socket is open, its 'close' forwarded to this connection. */
  opened(served: tls.TLSSocket): void;
  /** The hello is on its way: what openSocket will need may be made now, while the server would wait. */
  prepare(): void;
}

type State = 'peeking' | 'held' | 'open' | 'closed';

const kPeeked = Symbol('native-tls-listener.peeked-hello');

/** The socket opened on a peeked descriptor, pointing back at its PeekedHello. */
type Forwarding = net.Socket & { [kPeeked]?: PeekedHello };

/** Module-level, so no closure is made per connection (as src/connection_lifecycle.ts). */
function onBottomClose(this: Forwarding, hadError: boolean): void {
  unkeep(this, 'close');
  this.off('close', onBottomClose);
  this[kPeeked]?.closed(hadError);
}

export class PeekedHello extends EventEmitter {
  /** Node's cache of the peer (src/accept/peer_address.ts primes it from accept()). */
  _peername?: PeerAddress;
  private state: State = 'peeking';
  private destroyRequested = false;
  private outcome: { hello: PeekedClientHello | undefined; taken: Buffer | undefined } | undefined;
  private client: PeekedHelloClient | undefined;
  private bottom: net.Socket | undefined;
  private headerOutcome: { outcome: HeaderOutcome } | undefined;
  /** The hello C++ parsed from the PROXY header's peek, queued behind the header. */
  private helloBehindHeader: PeekedClientHello | undefined;
  private onHeader: ((outcome: HeaderOutcome) => void) | undefined;
  /** Whether the client sent a byte after its PROXY header (false: it closed, or reset, first). */
  sentAfterHeader = true;

  constructor(
    readonly fd: number,
    private token: number,
    private readonly stage: PeekCanceller,
    /** Waiting for a PROXY header first, not the hello. */
    readonly behindProxy = false,
  ) {
    super();
  }

  get remoteAddress(): string | undefined {
    return this._peername?.address;
  }

  get remotePort(): number | undefined {
    return this._peername?.port;
  }

  get destroyed(): boolean {
    return this.destroyRequested || this.state === 'closed' || (this.bottom?.destroyed ?? false);
  }

  /** The PROXY header's outcome when it is in already (most often: read within the accept), else undefined. */
  headerIfRead(): { outcome: HeaderOutcome } | undefined {
    return this.headerOutcome;
  }

  /** Calls `then` once the PROXY header is in (at once if it is). */
  whenHeader(then: (outcome: HeaderOutcome) => void): void {
    if (this.headerOutcome !== undefined) then(this.headerOutcome.outcome);
    else this.onHeader = then;
  }

  /**
   * The native peeker handed the descriptor back with the header (HelloStage's callback), and
   * the hello queued behind it when the same peek parsed it whole.
   */
  headerRead(outcome: HeaderOutcome, helloBehind?: PeekedClientHello): void {
    if (this.state !== 'peeking') return;
    this.state = 'held';
    this.headerOutcome = { outcome };
    this.helloBehindHeader = helloBehind;
    const then = this.onHeader;
    this.onHeader = undefined;
    then?.(outcome);
  }

  /** Whether the header is read and the hello not asked for yet (the TLS stage calls peekHello). */
  get awaitingHello(): boolean {
    return this.state === 'held' && this.headerOutcome !== undefined && this.outcome === undefined;
  }

  /** After the header: the hello is peeked as without a balancer. A failure destroys this. */
  peekHello(): void {
    if (!this.awaitingHello) return;
    // 'peeking' before the watch: the hello may be in already, and come back within it.
    this.state = 'peeking';
    const parsed = this.helloBehindHeader;
    if (parsed !== undefined) {
      // Parsed with the header, still queued: as if a watch had found it at once.
      this.helloBehindHeader = undefined;
      this.settle(parsed, undefined);
      return;
    }
    try {
      this.token = this.stage.watchHello(this);
    } catch (error) {
      this.state = 'held';
      this.destroy(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * The descriptor under a net.Socket, for the PROXY header (and the hello) read in JS: this
   * connection closes with it. Throws (then this is destroyed) if it cannot be wrapped.
   */
  adoptSocket(): net.Socket {
    if (this.state !== 'held') throw new Error(`a connection ${this.state} cannot be adopted`);
    let socket: net.Socket;
    try {
      socket = adoptDescriptor(this.fd);
    } catch (error) {
      this.destroy(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
    this.attach(socket);
    return socket;
  }
  /**
   * Opens the socket with `client` once the hello is in (at once if it is), then tells it.
   * A failure to open destroys this with the error.
   */
  whenHello(client: PeekedHelloClient): void {
    this.client = client;
    if (this.outcome !== undefined) this.open(this.outcome);
    else if (this.state === 'peeking') client.prepare();
  }

  /** The native peeker handed the descriptor back (HelloStage's callback), with the bytes it read off it. */
  settle(hello: PeekedClientHello | undefined, taken: Buffer | undefined, verdict: HelloVerdict = 1): void {
    if (this.state !== 'peeking') return;
    this.state = 'held';
    if (verdict === -1 && this.headerOutcome !== undefined) this.sentAfterHeader = false;
    if (verdict === -1) {
      // The client's FIN and not one byte: closed here, with no TLSSocket made to read nothing
      // (a balancer's health check costs a peek, not a TLS socket).
      this.destroy();
      return;
    }
    this.outcome = { hello, taken };
    if (this.client !== undefined) this.open(this.outcome);
  }

  /** The native peeker handed the descriptor back with the socket's error: it is closed with it. */
  fail(error: Error, verdict: HelloVerdict = 0): void {
    if (this.state !== 'peeking') return;
    this.state = 'held';
    if (verdict === -1 && this.headerOutcome !== undefined) this.sentAfterHeader = false;
    this.destroy(error);
  }

  destroy(error?: Error): this {
    if (this.destroyRequested || this.state === 'closed') return this;
    this.destroyRequested = true;
    if (this.state === 'open') {
      this.bottom?.destroy(error);
      return this;
    }
    if (this.state === 'peeking') this.stage.cancel(this.token);
    else this.stage.closeHeld(this.fd);
    this.state = 'closed';
    process.nextTick(() => {
      if (error !== undefined) this.emit('error', error);
      this.emit('close', false);
    });
    return this;
  }

  /** The socket opened on the descriptor closed (onBottomClose): so does this connection. */
  closed(hadError: boolean): void {
    this.state = 'closed';
    this.emit('close', hadError);
  }

  private open({ hello, taken }: { hello: PeekedClientHello | undefined; taken: Buffer | undefined }): void {
    const client = this.client;
    if (this.state !== 'held' || client === undefined) return;
    let opened: { served: tls.TLSSocket; bottom: net.Socket };
    try {
      opened = client.openSocket(this.fd, hello, taken);
    } catch (error) {
      this.destroy(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.attach(opened.bottom);
    client.opened(opened.served);
  }

  /** `bottom` owns the descriptor now; its close is this connection's. */
  private attach(bottom: net.Socket): void {
    this.state = 'open';
    this.bottom = bottom;
    primePeerAddress(bottom, this._peername ?? null);
    // Kept: the TLSSocket is the handler's, which may take its listeners off.
    (bottom as Forwarding)[kPeeked] = this;
    bottom.on('close', onBottomClose);
    keep(bottom, 'close', onBottomClose);
  }
}
