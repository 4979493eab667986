// The PROXY protocol stage in front of a listener's own setup (TLS, or none for TCP): the
// peer must be a trusted proxy, its header is read within the setup's time, the client's
// real addresses replace the proxy's in the connection's record (and so in every failure
// report), and the next stage starts on the bytes that followed the header.
//
// In front of a TLS stage with the addon, the header is read natively (src/tls/peeked_hello.ts):
// exactly its bytes are taken off the socket and parsed here by the same parser, the ClientHello
// stays in the kernel, and the TLS stage opens one TLSSocket on the descriptor. Otherwise, and
// when the native reader could not find the header's end, a net.Socket reads it
// (proxy_header_reader.ts) and the TLS stage runs on top of that socket.
import type net from 'node:net';
import type { ConnectionSetup, SetupDone, SetupFail } from '../connection_lifecycle.js';
import type { ConnectionRecord } from '../registry.js';
import { codedError, ErrorCodes } from '../errors.js';
import type { CodedError, ErrorCode } from '../errors.js';
import { readProxyHeader } from './proxy_header_reader.js';
import { parseProxyHeader } from './proxy_header_accumulator.js';
import type { ProxyProtocolMode } from './proxy_header_accumulator.js';
import { PeekedHello } from '../tls/peeked_hello.js';
import type { HeaderOutcome } from '../tls/peeked_hello.js';
import type { DescriptorAdopter } from '../accept/descriptor_handoff.js';
import type { ProxyHeader, ProxyTlvs } from './proxy_header.js';
import type { TrustedProxies } from './trusted_proxies.js';
import type { ClientAddressLimit } from './client_address_limit.js';
import type { AddressRejection } from '../accept/address_counts.js';
import { SetupDeadlines } from '../tls/setup_deadlines.js';

/** What the header said, as the handler gets it in `info.proxy`. */
export interface ProxyConnectionInfo {
  version: 1 | 2;
  /** 'local': the proxy's own connection (a health check); the addresses are the socket's own. */
  command: 'proxy' | 'local';
  family: 'IPv4' | 'IPv6' | 'unix' | undefined;
  /** The client, as the proxy saw it. */
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  /** The address the client connected to, on the proxy. */
  localAddress: string | undefined;
  localPort: number | undefined;
  /** The proxy itself: the peer of this socket. */
  proxyAddress: string | undefined;
  proxyPort: number | undefined;
  /** Version 2 extensions (authority, ssl, alpn, unique id...); empty for version 1. */
  tlvs: ProxyTlvs;
}

/** What a listener behind a proxy adds to its handler's info. */
export interface ProxiedInfo {
  /** The client's address: from the PROXY header, or the socket's for a LOCAL one. */
  remoteAddress?: string;
  remotePort?: number;
  proxy?: ProxyConnectionInfo;
}

export interface ProxySetupSettings {
  mode: ProxyProtocolMode;
  trusted: TrustedProxies;
  /** ms from accept for the header and the stage after it together. */
  timeoutMs: number;
  timeoutCode: ErrorCode;
  /** maxConnectionsPerAddress, counted by the client the header names. */
  addressLimit?: ClientAddressLimit;
}

/** A client refused by maxConnectionsPerAddress: at the limit, or new with the table full. */
function addressRefusal(reason: AddressRejection, id: number, address: string | undefined): CodedError {
  const from = address ?? 'an unknown address';
  return reason === 'maxConnectionsPerAddress'
    ? codedError(ErrorCodes.PER_ADDRESS_LIMIT, `connection ${id} from ${from}, which has maxConnectionsPerAddress connections already`)
    : codedError(ErrorCodes.ADDRESS_TABLE_FULL, `connection ${id} from ${from}: the per-address table is full (a new address is refused)`);
}

/** How a peer's close shows up in the stage after the header: its FIN, or its reset. */
const CLOSED_CODES = new Set<string>([ErrorCodes.CLIENT_CLOSED, 'ECONNRESET', 'EPIPE']);

/**
 * A trusted proxy's health check (HAProxy's `check-send-proxy`): a whole PROXY header (v2
 * LOCAL, or v1/v2 PROXY), then the connection closed (FIN or reset) with not one byte after
 * the header. Counted in `proxyProtocol.healthChecks`, not as a failed handshake.
 */
function isHealthCheck(error: CodedError, sentAfterHeader: () => boolean): boolean {
  return CLOSED_CODES.has(error.code) && !sentAfterHeader();
}

/** The header versions the native reader frames (native/proxy_frame.h kProxyAccept*). */
const VERSION_BITS: Record<ProxyProtocolMode, number> = { v1: 1, v2: 2, any: 3 };

function hasCode(error: Error): error is CodedError {
  return typeof (error as Partial<CodedError>).code === 'string';
}

/** The client as a record's peer: no keys for what the header leaves unknown (a unix address has no port). */
function peerOf(proxy: ProxyConnectionInfo): ConnectionRecord['peer'] {
  const peer: ConnectionRecord['peer'] = {};
  if (proxy.remoteAddress !== undefined) peer.remoteAddress = proxy.remoteAddress;
  if (proxy.remotePort !== undefined) peer.remotePort = proxy.remotePort;
  return peer;
}

/**
 * The next stage's info with the client's address and the header added. The stage made `info`
 * for this connection alone, so it is completed in place: copying it with spreads (the same keys,
 * in the same order) cost V8 a runtime call per property, per connection.
 */
function withClient<I extends ProxiedInfo>(info: I, peer: ConnectionRecord['peer'], proxy: ProxyConnectionInfo): I {
  if (peer.remoteAddress !== undefined) info.remoteAddress = peer.remoteAddress;
  if (peer.remotePort !== undefined) info.remotePort = peer.remotePort;
  info.proxy = proxy;
  return info;
}

/** The socket fields a LOCAL header's info takes (a PeekedHello has the peer only: the rest when served). */
type HeaderSocket = Pick<net.Socket, 'remoteAddress' | 'remotePort' | 'remoteFamily' | 'localAddress' | 'localPort'>;

function describeHeader(header: ProxyHeader, socket: HeaderSocket): ProxyConnectionInfo {
  // Built whole in each branch, not spread: it is made once per connection.
  if (header.command === 'local') {
    const family = socket.remoteFamily === 'IPv4' || socket.remoteFamily === 'IPv6' ? socket.remoteFamily : undefined;
    return {
      version: header.version,
      command: 'local',
      family,
      remoteAddress: socket.remoteAddress,
      remotePort: socket.remotePort,
      localAddress: socket.localAddress,
      localPort: socket.localPort,
      proxyAddress: socket.remoteAddress,
      proxyPort: socket.remotePort,
      tlvs: header.tlvs,
    };
  }
  return {
    version: header.version,
    command: 'proxy',
    family: header.family,
    remoteAddress: header.sourceAddress,
    remotePort: header.sourcePort,
    localAddress: header.destinationAddress,
    localPort: header.destinationPort,
    proxyAddress: socket.remoteAddress,
    proxyPort: socket.remotePort,
    tlvs: header.tlvs,
  };
}

export class ProxyProtocolSetup<S extends net.Socket, I extends { id: number } & ProxiedInfo> implements ConnectionSetup<S, I> {
  /** An untrusted peer or a bad header fails the connection, and its report names the peer. */
  readonly canFail = true;

  /** One queue and one timer for every connection's deadline (src/tls/setup_deadlines.ts), not a setTimeout each. */
  private readonly deadlines: SetupDeadlines;

  constructor(
    private readonly next: ConnectionSetup<S, I>,
    private readonly settings: ProxySetupSettings,
  ) {
    this.deadlines = new SetupDeadlines(settings.timeoutMs);
  }

  /** The next stage's adopter for connections whose header is read natively, when it has one. */
  directAdopter(): DescriptorAdopter | undefined {
    return this.next.proxiedAdopter?.(VERSION_BITS[this.settings.mode]);
  }

  start(
    socket: net.Socket,
    record: ConnectionRecord,
    done: SetupDone<S, I>,
    fail: SetupFail,
  ): void {
    const peer = record.peer.remoteAddress;
    if (!this.settings.trusted.allows(peer)) {
      fail(record, codedError(ErrorCodes.PROXY_PROTOCOL_UNTRUSTED, `connection ${record.id} from ${peer ?? 'an unknown address'}, which is not in trustedProxies`), 'failed');
      return;
    }
    let finished = false;
    // One deadline for the header and the stage after it: a header sent slowly leaves the
    // TLS handshake less time, not a fresh timeout.
    const deadline = this.deadlines.add(() => {
      if (!finish()) return;
      fail(record, codedError(this.settings.timeoutCode, `setup of connection ${record.id} took longer than ${this.settings.timeoutMs} ms`), 'timedOut');
    });
    const finish = (): boolean => {
      if (finished) return false;
      finished = true;
      SetupDeadlines.cancel(deadline);
      return true;
    };
    const failWith = (error: CodedError): void => {
      if (finish()) fail(record, error, 'failed');
    };
    const closedEarly = (): void =>
      failWith(codedError(ErrorCodes.CLIENT_CLOSED, `the client closed connection ${record.id} before sending a whole PROXY protocol header`));
    // A reset is the socket's own ECONNRESET (code, errno, syscall), as in the TLS stage.
    const onError = (error: Error): void => failWith(hasCode(error) ? error : codedError(ErrorCodes.CONNECTION_SETUP_FAILED, error.message, { cause: error }));
    const listen = (on: net.Socket): void => {
      on.once('close', closedEarly);
      on.once('error', onError);
    };
    const unlisten = (on: net.Socket): void => {
      on.off('close', closedEarly);
      on.off('error', onError);
    };
    // The header is in: the client's addresses, its per-address count, then the next stage.
    const proceed = (header: ProxyHeader, on: net.Socket, described: HeaderSocket, sentAfterHeader: () => boolean): void => {
      if (finished) return;
      const proxy = describeHeader(header, described);
      // Every report from here on (tlsClientError, logs) names the client, not the proxy.
      record.peer = peerOf(proxy);
      const refused = this.settings.addressLimit?.admit(proxy, record) ?? null;
      if (refused !== null) {
        failWith(addressRefusal(refused, record.id, proxy.remoteAddress));
        return;
      }
      this.next.start(
        on,
        record,
        (_record, served, info, handshake) => {
          // A LOCAL header's own addresses: a PeekedHello knows its peer only, its socket the rest.
          const described = on instanceof PeekedHello && header.command === 'local' ? describeHeader(header, served) : proxy;
          if (finish()) done(record, served, withClient(info, record.peer, described), handshake);
        },
        (_record, error, kind) => {
          if (finish()) fail(record, error, kind === 'failed' && isHealthCheck(error, sentAfterHeader) ? 'healthCheck' : kind);
        },
      );
    };
    // The header read in JS off a net.Socket, which the next stage then serves from.
    const readInJs = (on: net.Socket): void => {
      listen(on);
      readProxyHeader(
        on,
        this.settings.mode,
        (header, rest) => {
          // Where the header ended in the raw stream: nothing read past it means the proxy sent
          // no byte of its client's (no TLS record) before the connection ended.
          const headerEnd = on.bytesRead - rest;
          unlisten(on);
          proceed(header, on, on, () => on.bytesRead !== headerEnd);
        },
        failWith,
      );
    };
    if (!(socket instanceof PeekedHello && socket.behindProxy)) {
      readInJs(socket);
      return;
    }
    const connection = socket;
    const headerIn = (outcome: HeaderOutcome): void => {
      if (finished) return;
      if (outcome === undefined) {
        // No end found (a FIN, or a queue that would not grow): JS reads what there is.
        let bottom: net.Socket;
        try {
          bottom = connection.adoptSocket();
        } catch (error) {
          failWith(codedError(ErrorCodes.CONNECTION_SETUP_FAILED, error instanceof Error ? error.message : String(error), { cause: error }));
          return;
        }
        readInJs(bottom);
        return;
      }
      // The native framer gives the parser exactly the bytes it needs for its verdict.
      const parsed = parseProxyHeader(this.settings.mode, outcome.header);
      if (parsed.kind !== 'complete') {
        const reason = parsed.kind === 'invalid' ? parsed.reason : 'the header ended early';
        failWith(codedError(ErrorCodes.PROXY_PROTOCOL_INVALID, `invalid PROXY protocol header: ${reason}`));
        return;
      }
      proceed(parsed.header, connection, connection, () => connection.sentAfterHeader);
    };
    // Most often C++ read the header within the accept (a balancer sends it at once): no wait,
    // so no listeners to add and take off again.
    const read = connection.headerIfRead();
    if (read !== undefined) {
      headerIn(read.outcome);
      return;
    }
    listen(connection);
    connection.whenHeader((outcome: HeaderOutcome) => {
      unlisten(connection);
      headerIn(outcome);
    });
  }
}
