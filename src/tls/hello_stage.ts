// The listener's native ClientHello peeker (native/hello_peek.h) and the connections waiting in
// it: the adopter that gives each accepted descriptor to it, the tokens that name the waits, and
// the callbacks that turn its outcomes (a parsed hello, a PROXY header, a socket error) into
// what a PeekedHello (src/tls/peeked_hello.ts) is told. Descriptor ownership is as written
// there: watch() moves the descriptor into C++, a callback moves it back to the PeekedHello.
// A hello already queued whole at the accept never moves it: watchUnlessParsed() returns what
// the hello asks for, and the TLSSocket's handle takes the descriptor from the acceptor.
import fs from 'node:fs';
import type net from 'node:net';
import type tls from 'node:tls';
import type { HelloVerdict, NativeBinding, NativeHelloPeeker, ParsedHello } from '../native/binding.js';
import { wireList } from './alpn.js';
import { systemError } from '../errors.js';
import { SLOT_SETTLED } from '../accept/batch_slots.js';
import type { BatchSlot } from '../accept/batch_slots.js';
import { PeekedHello } from './peeked_hello.js';
import type { PeekCanceller, PeekedClientHello } from './peeked_hello.js';

/**
 * Opens the TLSSocket on `fd` for a hello parsed at the accept, marking `slot` settled the
 * instant its handle owns `fd`; null where this Node cannot (`fd` untouched). Throws leaving
 * `fd` untouched and the caller's.
 */
export type OpenParsed = (fd: number, hello: PeekedClientHello, slot: BatchSlot) => tls.TLSSocket | null;

/** The listener's native peeker and the connections waiting in it. */
export class HelloStage implements PeekCanceller {
  private readonly peeker: NativeHelloPeeker;
  /** Exactly the tokens waiting in C++: both are removed together. */
  private readonly waiting = new Map<number, PeekedHello>();
  private nextToken = 0;

  /** `alpn`: the server's protocols; `sniAlpn`: those offered to clients served with the SNI context. */
  constructor(
    peekerClass: NonNullable<NativeBinding['HelloPeeker']>,
    private readonly closeDescriptor: NativeBinding['closeDescriptor'],
    private readonly alpn: readonly string[],
    private readonly sniAlpn: readonly string[],
    /** Opens the socket for a hello parsed at the accept (TlsSetup's openParsed). */
    private readonly openParsed: OpenParsed,
  ) {
    this.peeker = new peekerClass(
      [wireList(alpn), wireList(sniAlpn)],
      (token, verdict, servername, errno, taken, choice, sniChoice) => this.settle(token, verdict, servername, errno, taken, choice ?? -1, sniChoice ?? -1),
      (token, header, errno, helloParsed, servername, choice, sniChoice) =>
        this.settleHeader(token, header, errno, helloParsed === 1 ? this.helloOf(servername, choice ?? -1, sniChoice ?? -1) : undefined),
    );
  }

  /**
   * A DescriptorAdopter: the descriptor goes to the native peeker, and its batch slot says
   * settled the instant watch() has it (if watch throws, it stays the acceptor's, untouched).
   */
  readonly adopt = (fd: number, slot: BatchSlot): net.Socket => this.adoptWaiting(fd, slot, 0);

  /**
   * The same for a listener behind a PROXY balancer: C++ reads the header first (`versions`:
   * bit 0 version 1, bit 1 version 2), then the PROXY stage has the hello peeked.
   */
  adoptBehindProxy(versions: number): (fd: number, slot: BatchSlot) => net.Socket {
    return (fd, slot) => this.adoptWaiting(fd, slot, versions);
  }

  /** Watches a held descriptor for its hello (after its PROXY header). */
  watchHello(connection: PeekedHello): number {
    const token = this.freeToken();
    this.waiting.set(token, connection);
    try {
      this.peeker.watch(connection.fd, token);
    } catch (error) {
      this.waiting.delete(token);
      throw error;
    }
    return token;
  }

  private adoptWaiting(fd: number, slot: BatchSlot, versions: number): net.Socket {
    const token = this.freeToken();
    // Made before the watch: an outcome there already may come back within it.
    const connection = new PeekedHello(fd, token, this, versions !== 0);
    this.waiting.set(token, connection);
    let parsed: ParsedHello | undefined;
    try {
      if (versions !== 0) this.peeker.watch(fd, token, versions);
      else parsed = this.peeker.watchUnlessParsed(fd, token);
    } catch (error) {
      this.waiting.delete(token);
      throw error;
    }
    if (parsed !== undefined) return this.openedAtOnce(fd, slot, token, connection, parsed);
    // No call between watch() and this store (src/accept/batch_slots.ts).
    slot.slots[slot.index] = SLOT_SETTLED;
    // The lifecycle and the registry use a connection's events, destroy() and peer only.
    return connection as unknown as net.Socket;
  }

  /**
   * The whole hello was queued at the accept (every connection with deferAccept; otherwise
   * those of a burst or a backlog, and a few of a lone client's): the descriptor never left the
   * acceptor, and one TLSSocket is opened on it now, as with no hello to read, with no wait, no
   * callback and no PeekedHello between it and the registry. Where this Node cannot open one
   * directly, the PeekedHello holds the descriptor as if its wait had ended at once.
   */
  private openedAtOnce(fd: number, slot: BatchSlot, token: number, connection: PeekedHello, parsed: ParsedHello): net.Socket {
    this.waiting.delete(token);
    const hello = this.helloOf(parsed[0], parsed[1] ?? -1, parsed[2] ?? -1);
    // Throwing, it leaves `fd` untouched and the acceptor's (openTlsSocket).
    const socket = this.openParsed(fd, hello, slot);
    if (socket !== null) return socket;
    slot.slots[slot.index] = SLOT_SETTLED;
    connection.settle(hello, undefined);
    return connection as unknown as net.Socket;
  }

  private freeToken(): number {
    let token = this.nextToken;
    while (this.waiting.has(token)) token = (token + 1) % TOKEN_LIMIT;
    this.nextToken = (token + 1) % TOKEN_LIMIT;
    return token;
  }

  /**
   * The listener closed: every wait is cancelled (none should be left: its connections were
   * destroyed) and the peeker lets go of what it holds (its epoll descriptor, native/wait_set.h).
   */
  close(): void {
    this.waiting.clear();
    this.peeker.close();
  }

  /**
   * Closes a held descriptor natively where the addon can: in a worker thread fs.closeSync warns
   * of a descriptor the worker did not open ("closed but not opened in unmanaged mode").
   */
  closeHeld(fd: number): void {
    if (this.closeDescriptor !== undefined) this.closeDescriptor(fd);
    else fs.closeSync(fd);
  }

  /** Ends a wait: C++ closes the descriptor. */
  cancel(token: number): void {
    if (this.waiting.delete(token)) this.peeker.cancel(token);
  }

  // Never throws: it may run inside watch() (the header was there already).
  private settleHeader(token: number, header: Buffer | undefined, errno: number, helloBehind: PeekedClientHello | undefined): void {
    const connection = this.waiting.get(token);
    if (connection === undefined) return;
    this.waiting.delete(token);
    if (errno !== 0) connection.fail(systemError(errno, 'read'));
    else if (header === undefined) connection.headerRead(undefined);
    else connection.headerRead({ header }, helloBehind);
  }

  // Never throws: it may run inside watch() (the hello was there already).
  private settle(
    token: number,
    verdict: HelloVerdict,
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
      connection.fail(systemError(errno, 'read'), verdict);
      return;
    }
    if (verdict !== 1) {
      connection.settle(undefined, taken, verdict);
      return;
    }
    connection.settle(this.helloOf(servername, choice, sniChoice), taken);
  }

  /** What a parsed hello asks for: its name, and the protocols chosen from each ALPN list. */
  private helloOf(servername: string | undefined, choice: number, sniChoice: number): PeekedClientHello {
    const hello: PeekedClientHello = {};
    if (servername !== undefined) hello.servername = servername;
    const protocol = this.alpn[choice];
    const sniProtocol = this.sniAlpn[sniChoice];
    if (protocol !== undefined) hello.protocol = protocol;
    if (sniProtocol !== undefined) hello.sniProtocol = sniProtocol;
    return hello;
  }
}

/** Tokens are 0..2^31-2, reused once their connection has left the peeker. */
const TOKEN_LIMIT = 0x7fffffff;
