// The TLS setup stage of each connection: choose the credential (SNI) and the protocol
// (ALPN), run the handshake under one timeout, check the client's certificate chain, and
// hand the handler a TLSSocket that is ready, or fail the connection with a coded error.
import type net from 'node:net';
import tls from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import type { ConnectionSetup } from '../listener.js';
import type { SetupDone, SetupFail } from '../connection_lifecycle.js';
import type { ConnectionRecord } from '../registry.js';
import { codedError, ErrorCodes } from '../errors.js';
import type { CodedError } from '../errors.js';
import { chooseAlpnProtocol } from './alpn.js';
import { SocketOptions } from './socket_options.js';
import { readClientHello } from './client_hello_reader.js';
import type { ClientHelloSummary } from './client_hello_reader.js';
import { peerCertificateChain } from './peer_chain.js';
import { hasEmptyVerificationStore, sameKeyType } from './credentials.js';
import { createClientCertRejectedError, validateClientChain } from './client_certificate.js';
import { releaseControlAfterSetup } from './released_control.js';
import { markSecure } from '../node_internals.js';
import { SetupDeadlines } from './setup_deadlines.js';
import { carry, Handshake, onHandshakeDeadline, onSetupClose, onSetupError } from './tls_handshake.js';
import { isOpenedTlsSocket, openPreparedTlsSocket, openTlsSocket } from './direct_tls_socket.js';
import { PreparedSockets } from './prepared_sockets.js';
import type { PreparedSocket } from './prepared_sockets.js';
import { HelloStage } from './hello_stage.js';
import type { OpenParsed } from './hello_stage.js';
import { markOpenedAtAccept, openedAtAccept } from './opened_at_accept.js';
import { PeekedHello } from './peeked_hello.js';
import type { PeekedClientHello } from './peeked_hello.js';
import { loadNativeBinding } from '../native/load.js';
import { adoptDescriptor } from '../accept/descriptor_handoff.js';
import type { DescriptorAdopter } from '../accept/descriptor_handoff.js';
import type { ProxiedInfo } from '../proxy/proxy_setup.js';

/** `remoteAddress`, `remotePort` and `proxy` are set with the proxyProtocol option (src/proxy/). */
export interface ConnectionInfo extends ProxiedInfo {
  id: number;
  /** The client sent SNI and the SNI credential served it. */
  sniCredentialUsed: boolean;
  servername?: string;
  alpnProtocol: string | false;
  /** The chain the client presented, leaf first; [] when none was asked for or sent. */
  peerCertificateChain: X509Certificate[];
}

/** The contexts that serve new connections; replaced as a whole, never edited (see replaceContexts). */
export interface ServingContexts {
  context: tls.SecureContext;
  sniContext?: tls.SecureContext;
}

export interface TlsSetupOptions extends ServingContexts {
  alpn?: readonly string[];
  /** The protocols offered to clients served with sniContext, when not all of alpn (a subset of it). */
  sniAlpn?: readonly string[];
  requestClientCert: boolean;
  handshakeTimeout: number;
}

/** What the ClientHello decided: the name the client sent, and the protocol to offer (none: no ALPN). */
export interface HelloDecision {
  servername?: string;
  protocol?: string;
}

export class TlsSetup implements ConnectionSetup<tls.TLSSocket, ConnectionInfo> {
  /** A handshake can fail, and its report names the client (read at accept). */
  readonly canFail = true;
  private readonly serverAlpn: readonly string[];
  private contexts: Readonly<ServingContexts>;
  private readonly deadlines: SetupDeadlines;
  /** The native ClientHello stage, made on first use; null where the addon has none. */
  private helloStage: HelloStage | null | undefined;
  /** Each connection's TLSSocket options, by contexts and choice (src/tls/socket_options.ts). */
  private readonly socketOptions: SocketOptions;
  /** TLSSockets made while their connection's hello is on its way (src/tls/prepared_sockets.ts). */
  private readonly preparedSockets = new PreparedSockets();
  /** Opens a TLSSocket on a descriptor with the contexts serving now (directAdopter). */
  private readonly openDirect: DescriptorAdopter = (fd, slot) =>
    openTlsSocket(fd, this.socketOptions.of(undefined, this.contexts), slot) ?? adoptDescriptor(fd, slot);
  /** Opens a TLSSocket on a descriptor whose hello was queued whole at the accept (HelloStage). */
  private readonly openParsed: OpenParsed = (fd, parsed, slot) => {
    const contexts = this.contexts;
    const hello = this.decidePeeked(parsed, contexts);
    const socket = openTlsSocket(fd, this.socketOptions.of(hello, contexts), slot);
    if (socket !== null) markOpenedAtAccept(socket, { hello, contexts });
    return socket;
  };

  constructor(private readonly options: TlsSetupOptions) {
    this.deadlines = new SetupDeadlines(options.handshakeTimeout);
    this.serverAlpn = options.alpn ?? [];
    this.socketOptions = new SocketOptions(this.serverAlpn, options.sniAlpn, options.requestClientCert);
    this.contexts = { context: options.context, ...(options.sniContext ? { sniContext: options.sniContext } : {}) };
  }

  /**
   * Serves connections that start their setup from now on with `next`. Each connection reads
   * the contexts once, when its setup starts, so one in its handshake finishes with the
   * contexts it began with; nothing is dropped.
   */
  replaceContexts(next: Readonly<ServingContexts>): void {
    this.contexts = next;
  }

  get servingContexts(): Readonly<ServingContexts> {
    return this.contexts;
  }

  /**
   * When the first bytes can go straight to OpenSSL (no ClientHello to read first), each
   * descriptor is opened under its own TLSSocket, with no net.Socket beneath it.
   */
  directAdopter(): DescriptorAdopter | undefined {
    if (!this.needsClientHello(this.contexts)) return this.openDirect;
    // The hello is peeked in C++, then one TLSSocket is opened (src/tls/peeked_hello.ts).
    return this.peekStage()?.adopt;
  }

  /**
   * Behind a PROXY balancer: the header is read natively, then the hello is peeked (always: it
   * tells whether the client sent a byte after the header), then one TLSSocket is opened.
   */
  proxiedAdopter(versions: number): DescriptorAdopter | undefined {
    return this.peekStage()?.adoptBehindProxy(versions);
  }

  /** The listener closed: the native peeker, if one was made, lets go of what it holds. */
  close(): void {
    this.helloStage?.close();
    // None is made after this: a connection would be refused by the closed peeker anyway.
    this.helloStage = null;
  }

  private peekStage(): HelloStage | null {
    if (this.helloStage === undefined) {
      const binding = loadNativeBinding().binding;
      const peeker = binding?.HelloPeeker;
      this.helloStage = peeker
        ? new HelloStage(peeker, binding?.closeDescriptor?.bind(binding), this.serverAlpn, this.options.sniAlpn ?? this.serverAlpn, this.openParsed)
        : null;
    }
    return this.helloStage;
  }

  /**
   * The ClientHello is read before the TLSSocket exists for ALPN (by the client's preference,
   * and with no protocol in common served with none, as the original does: Node's ALPNCallback
   * could follow the client's order from inside OpenSSL, but picking none there is a fatal
   * no_application_protocol alert), and when the SNI credential's key type differs from the
   * primary's (or is not known): Node's SNI callback adds the SNI certificate beside the
   * primary one instead of replacing it (OpenSSL keeps one per key type), so OpenSSL would
   * serve whichever the client's signature algorithms list first, often the primary's.
   * Choosing the context up front serves exactly one. Otherwise the first bytes go straight
   * to OpenSSL (and Node's SNI callback).
   */
  private needsClientHello(contexts: Readonly<ServingContexts>): boolean {
    return this.serverAlpn.length > 0 || (contexts.sniContext !== undefined && !sameKeyType(contexts.context, contexts.sniContext));
  }

  start(
    socket: net.Socket,
    record: ConnectionRecord,
    done: SetupDone<tls.TLSSocket, ConnectionInfo>,
    fail: SetupFail,
  ): void {
    // A socket opened at the accept for its peeked hello goes by the contexts it was opened with.
    const atAccept = openedAtAccept(socket);
    const handshake = new Handshake(this, socket, record, atAccept?.contexts ?? this.contexts, done, fail);
    handshake.deadline = this.deadlines.add(onHandshakeDeadline, handshake);
    carry(socket, handshake);
    // The client's own end is one cause with one code, whichever layer sees it: its FIN while
    // the ClientHello is being read (the reader reports ERR_CLIENT_CLOSED), or the close under
    // a TLSSocket ('close' here); a reset is the socket's ECONNRESET on either path.
    socket.on('close', onSetupClose);
    socket.on('error', onSetupError);

    // `socket` is the TLSSocket itself when directAdopter() opened it (with the hello's decision
    // when it was peeked at the accept), else a net.Socket that the TLSSocket is built on.
    if (isOpenedTlsSocket(socket)) {
      handshake.listen(socket, atAccept?.hello);
      return;
    }
    if (socket instanceof PeekedHello) {
      // Behind a balancer the header is read; the hello is peeked from now.
      socket.peekHello();
      socket.whenHello(handshake);
      return;
    }
    if (this.needsClientHello(handshake.contexts)) {
      // The JS reader, where the addon has no peeker: not the hot path.
      readClientHello(
        socket,
        (summary) => handshake.helloRead(summary),
        (error) => handshake.failWith(error),
      );
    } else handshake.helloRead(undefined);
  }

  /** A handshake of `tlsSocket` reached 'secure' (onSecure): the handler gets it, or it fails. */
  secured(handshake: Handshake, tlsSocket: tls.TLSSocket): void {
    const info = this.describe(tlsSocket, handshake.record.id, handshake.hello, handshake.contexts);
    if (this.options.requestClientCert) {
      const verdict = validateClientChain(info.peerCertificateChain);
      if (!verdict.accepted) {
        handshake.failWith(createClientCertRejectedError(verdict));
        return;
      }
    }
    handshake.finish();
    handshake.release();
    markSecure(tlsSocket);
    releaseControlAfterSetup(tlsSocket);
    handshake.done(handshake.record, tlsSocket, info, { sniCredentialUsed: info.sniCredentialUsed });
  }

  timedOut(record: ConnectionRecord): CodedError {
    return codedError(ErrorCodes.TLS_HANDSHAKE_TIMEOUT, `TLS setup of connection ${record.id} took longer than ${this.options.handshakeTimeout} ms`);
  }

  /** The TLSSocket on a net.Socket whose hello the JS reader read (or that needs none). */
  wrapSocket(socket: net.Socket, summary: ClientHelloSummary | undefined, contexts: Readonly<ServingContexts>): { tlsSocket: tls.TLSSocket; hello: HelloDecision | undefined } {
    const hello = summary && this.decide(summary, contexts);
    return { tlsSocket: new tls.TLSSocket(socket, this.socketOptions.of(hello, contexts)), hello };
  }

  /** The JS reader's hello: the first of the client's protocols that is offered wins. */
  private decide(summary: ClientHelloSummary, contexts: Readonly<ServingContexts>): HelloDecision {
    const decision: HelloDecision = {};
    if (summary.servername !== undefined) decision.servername = summary.servername;
    const protocol = chooseAlpnProtocol(summary.alpnProtocols, this.socketOptions.offeredTo(summary.servername, contexts));
    if (protocol !== undefined) decision.protocol = protocol;
    return decision;
  }

  /**
   * The peeked hello: C++ chose from both lists by the client's preference. Where no hello has
   * to be read (a hello peeked behind a balancer only to see that one came), the socket is
   * opened as the direct path opens it.
   */
  decidePeeked(hello: PeekedClientHello | undefined, contexts: Readonly<ServingContexts>): HelloDecision | undefined {
    if (hello === undefined || !this.needsClientHello(contexts)) return undefined;
    const decision: HelloDecision = {};
    if (hello.servername !== undefined) decision.servername = hello.servername;
    const protocol = hello.servername !== undefined && contexts.sniContext ? hello.sniProtocol : hello.protocol;
    if (protocol !== undefined) decision.protocol = protocol;
    return decision;
  }

  /**
   * The TLSSocket on a descriptor whose hello was peeked: opened on it directly, or on a
   * net.Socket where this Node cannot, or where the peeker read bytes off it (`taken`), which
   * the net.Socket then holds for the TLS layer to read first (as after the JS reader).
   * `prepared`, a socket made while the hello was on its way, is opened on `fd` when it can
   * serve the hello, else destroyed. Throws leaving `fd` open and unowned if it cannot be opened.
   */
  openPeeked(
    fd: number,
    hello: HelloDecision | undefined,
    contexts: Readonly<ServingContexts>,
    taken: Buffer | undefined,
    prepared?: PreparedSocket,
  ): { served: tls.TLSSocket; bottom: net.Socket } {
    const options = this.socketOptions.of(hello, contexts);
    if (hello !== undefined && contexts.sniContext !== undefined) this.preparedSockets.served(options.secureContext === contexts.sniContext);
    if (prepared !== undefined) {
      // Only for a parsed hello with nothing read off the socket, and made with the context it chose.
      if (hello === undefined || taken !== undefined) this.preparedSockets.discard(prepared);
      else {
        const socket = this.preparedSockets.take(prepared, options.secureContext);
        if (socket !== undefined) {
          const served = openPreparedTlsSocket(socket, fd, this.socketOptions.wire(hello.protocol));
          return { served, bottom: served };
        }
      }
    }
    const direct = taken === undefined ? openTlsSocket(fd, options) : null;
    if (direct) return { served: direct, bottom: direct };
    const bottom = adoptDescriptor(fd);
    if (taken !== undefined) bottom.unshift(taken);
    return { served: new tls.TLSSocket(bottom, options), bottom };
  }

  /**
   * A TLSSocket for a connection whose hello is on its way, made now rather than once the hello
   * is in (src/tls/prepared_sockets.ts); openPeeked uses it when the hello chooses the context
   * it was made with. Undefined where this Node cannot, or when enough are out already.
   */
  prepareSocket(contexts: Readonly<ServingContexts>): PreparedSocket | undefined {
    const guess: HelloDecision = this.preparedSockets.guessSni && contexts.sniContext !== undefined ? { servername: '' } : {};
    return this.preparedSockets.make(this.socketOptions.of(guess, contexts));
  }

  /** A prepared socket its connection will not use (the setup ended first). */
  discardPrepared(prepared: PreparedSocket): void {
    this.preparedSockets.discard(prepared);
  }

  private describe(tlsSocket: tls.TLSSocket, id: number, hello: HelloDecision | undefined, contexts: Readonly<ServingContexts>): ConnectionInfo {
    // `servername` is set by Node on server sockets but missing from its type definitions.
    const seen = (tlsSocket as unknown as { servername?: unknown }).servername;
    const servername = hello ? hello.servername : typeof seen === 'string' ? seen : undefined;
    const sniCredentialUsed = contexts.sniContext !== undefined && servername !== undefined;
    const info: ConnectionInfo = {
      id,
      sniCredentialUsed,
      alpnProtocol: tlsSocket.alpnProtocol ?? false,
      peerCertificateChain: this.options.requestClientCert ? peerCertificateChain(tlsSocket, hasEmptyVerificationStore(servedBy(contexts, sniCredentialUsed))) : [],
    };
    if (servername !== undefined) info.servername = servername;
    return info;
  }
}

/** The context the handshake used (SNI picks sniContext whenever there is one). */
function servedBy(contexts: Readonly<ServingContexts>, sniCredentialUsed: boolean): tls.SecureContext {
  return sniCredentialUsed && contexts.sniContext ? contexts.sniContext : contexts.context;
}
