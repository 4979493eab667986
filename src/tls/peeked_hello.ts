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
// destroy() closes it wherever it is: cancel() in C++ while peeking, closeSync here while held,
// the socket's own destroy() once open. Whichever way, 'close' is emitted once, after the
// descriptor is closed.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type net from 'node:net';
import type tls from 'node:tls';
import type { NativeBinding, NativeHelloPeeker, PeerAddress } from '../native/binding.js';
import { keep, unkeep } from '../kept_listener.js';
import { primePeerAddress } from '../accept/peer_address.js';
import { wireList } from './alpn.js';
import { systemError } from '../errors.js';
import { SLOT_SETTLED } from '../accept/batch_slots.js';
import type { BatchSlot } from '../accept/batch_slots.js';

/** What the peeked ClientHello asks for; undefined when it goes to OpenSSL unparsed. */
export interface PeekedClientHello {
  /** The host name, when the client sent a non-empty one. */
  servername?: string;
  /** The first of the client's protocols in the server's list, and in the list for SNI clients. */
  protocol?: string;
  sniProtocol?: string;
}


/** Where a waiting connection's descriptor is: the stage that can cancel the wait. */
interface PeekCanceller {
  cancel(token: number): void;
}

/** Who waits for the hello (the connection's TLS setup, src/tls/tls_handshake.ts). */
export interface PeekedHelloClient {
  /**
   * Opens the connection's socket on the descriptor, `taken` (bytes the native peeker read off
   * it) read first; throws leaving `fd` open and unowned.
   */
  openSocket(fd: number, hello: PeekedClientHello | undefined, taken: Buffer | undefined): { served: tls.TLSSocket; bottom: net.Socket };
  /** The socket is open, its 'close' forwarded to this connection. */
  opened(served: tls.TLSSocket): void;
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

  constructor(
    readonly fd: number,
    private readonly token: number,
    private readonly stage: PeekCanceller,
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

  /**
   * Opens the socket with `client` once the hello is in (at once if it is), then tells it.
   * A failure to open destroys this with the error.
   */
  whenHello(client: PeekedHelloClient): void {
    this.client = client;
    if (this.outcome !== undefined) this.open(this.outcome);
  }

  /** The native peeker handed the descriptor back (HelloStage's callback), with the bytes it read off it. */
  settle(hello: PeekedClientHello | undefined, taken: Buffer | undefined): void {
    if (this.state !== 'peeking') return;
    this.state = 'held';
    this.outcome = { hello, taken };
    if (this.client !== undefined) this.open(this.outcome);
  }

  /** The native peeker handed the descriptor back with the socket's error: it is closed with it. */
  fail(error: Error): void {
    if (this.state !== 'peeking') return;
    this.state = 'held';
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
    else fs.closeSync(this.fd);
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
    this.state = 'open';
    this.bottom = opened.bottom;
    primePeerAddress(opened.bottom, this._peername ?? null);
    // Kept: the TLSSocket is the handler's, which may take its listeners off.
    (opened.bottom as Forwarding)[kPeeked] = this;
    opened.bottom.on('close', onBottomClose);
    keep(opened.bottom, 'close', onBottomClose);
    client.opened(opened.served);
  }
}

/** The listener's native peeker and the connections waiting in it. */
export class HelloStage implements PeekCanceller {
  private readonly peeker: NativeHelloPeeker;
  /** Exactly the tokens waiting in C++: both are removed together. */
  private readonly waiting = new Map<number, PeekedHello>();
  private nextToken = 0;

  /** `alpn`: the server's protocols; `sniAlpn`: those offered to clients served with the SNI context. */
  constructor(
    peekerClass: NonNullable<NativeBinding['HelloPeeker']>,
    private readonly alpn: readonly string[],
    private readonly sniAlpn: readonly string[],
  ) {
    this.peeker = new peekerClass([wireList(alpn), wireList(sniAlpn)], (token, parsed, servername, errno, taken, choice, sniChoice) =>
      this.settle(token, parsed, servername, errno, taken, choice ?? -1, sniChoice ?? -1),
    );
  }

  /**
   * A DescriptorAdopter: the descriptor goes to the native peeker, and its batch slot says
   * settled the instant watch() has it (if watch throws, it stays the acceptor's, untouched).
   */
  readonly adopt = (fd: number, slot: BatchSlot): net.Socket => {
    let token = this.nextToken;
    while (this.waiting.has(token)) token = (token + 1) % TOKEN_LIMIT;
    this.nextToken = (token + 1) % TOKEN_LIMIT;
    const connection = new PeekedHello(fd, token, this);
    this.waiting.set(token, connection);
    try {
      this.peeker.watch(fd, token);
    } catch (error) {
      this.waiting.delete(token);
      throw error;
    }
    // No call between watch() and this store (src/accept/batch_slots.ts).
    slot.slots[slot.index] = SLOT_SETTLED;
    // The lifecycle and the registry use a connection's events, destroy() and peer only.
    return connection as unknown as net.Socket;
  };

  /** Ends a wait: C++ closes the descriptor. */
  cancel(token: number): void {
    if (this.waiting.delete(token)) this.peeker.cancel(token);
  }

  // Never throws: it may run inside watch() (the hello was there already).
  private settle(
    token: number,
    parsed: boolean,
    servername: string | undefined,
    errno: number,
    taken: Buffer | undefined,
    choice: number,
    sniChoice: number,
  ): void {
    const connection = this.waiting.get(token);
    if (connection === undefined) return;
    this.waiting.delete(token);
    if (errno !== 0) {
      // The peek consumed the socket's error (a reset): the connection fails with it here.
      connection.fail(systemError(errno, 'read'));
      return;
    }
    if (!parsed) {
      connection.settle(undefined, taken);
      return;
    }
    const hello: PeekedClientHello = {};
    if (servername !== undefined) hello.servername = servername;
    const protocol = this.alpn[choice];
    const sniProtocol = this.sniAlpn[sniChoice];
    if (protocol !== undefined) hello.protocol = protocol;
    if (sniProtocol !== undefined) hello.sniProtocol = sniProtocol;
    connection.settle(hello, taken);
  }
}

/** Tokens are 0..2^31-2, reused once their connection has left the peeker. */
const TOKEN_LIMIT = 0x7fffffff;
