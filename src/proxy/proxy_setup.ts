// The PROXY protocol stage in front of a listener's own setup (TLS, or none for TCP): the
// peer must be a trusted proxy, its header is read within the setup's time, the client's
// real addresses replace the proxy's in the connection's record (and so in every failure
// report), and the next stage starts on the bytes that followed the header.
import type net from 'node:net';
import type { ConnectionSetup, SetupDone, SetupFail } from '../connection_lifecycle.js';
import type { ConnectionRecord } from '../registry.js';
import { codedError, ErrorCodes } from '../errors.js';
import type { CodedError, ErrorCode } from '../errors.js';
import { readProxyHeader } from './proxy_header_reader.js';
import type { ProxyProtocolMode } from './proxy_header_accumulator.js';
import type { ProxyHeader, ProxyTlvs } from './proxy_header.js';
import type { TrustedProxies } from './trusted_proxies.js';
import type { ClientAddressLimit } from './client_address_limit.js';
import type { AddressRejection } from '../accept/address_counts.js';

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
function isHealthCheck(error: CodedError, socket: net.Socket, headerEnd: number): boolean {
  return CLOSED_CODES.has(error.code) && socket.bytesRead === headerEnd;
}

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

function describeHeader(header: ProxyHeader, socket: net.Socket): ProxyConnectionInfo {
  const proxy = { proxyAddress: socket.remoteAddress, proxyPort: socket.remotePort };
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
      ...proxy,
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
    ...proxy,
    tlvs: header.tlvs,
  };
}

export class ProxyProtocolSetup<S extends net.Socket, I extends { id: number } & ProxiedInfo> implements ConnectionSetup<S, I> {
  /** An untrusted peer or a bad header fails the connection, and its report names the peer. */
  readonly canFail = true;

  constructor(
    private readonly next: ConnectionSetup<S, I>,
    private readonly settings: ProxySetupSettings,
  ) {}

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
    const timer = setTimeout(() => {
      if (!finish()) return;
      fail(record, codedError(this.settings.timeoutCode, `setup of connection ${record.id} took longer than ${this.settings.timeoutMs} ms`), 'timedOut');
    }, this.settings.timeoutMs);
    const finish = (): boolean => {
      if (finished) return false;
      finished = true;
      clearTimeout(timer);
      return true;
    };
    const failWith = (error: CodedError): void => {
      if (finish()) fail(record, error, 'failed');
    };
    const closedEarly = (): void =>
      failWith(codedError(ErrorCodes.CLIENT_CLOSED, `the client closed connection ${record.id} before sending a whole PROXY protocol header`));
    // A reset is the socket's own ECONNRESET (code, errno, syscall), as in the TLS stage.
    const onError = (error: Error): void => failWith(hasCode(error) ? error : codedError(ErrorCodes.CONNECTION_SETUP_FAILED, error.message, { cause: error }));
    socket.once('close', closedEarly);
    socket.once('error', onError);
    readProxyHeader(
      socket,
      this.settings.mode,
      (header, rest) => {
        // Where the header ended in the raw stream: nothing read past it means the proxy sent
        // no byte of its client's (no TLS record) before the connection ended.
        const headerEnd = socket.bytesRead - rest;
        socket.off('close', closedEarly);
        socket.off('error', onError);
        if (finished) return;
        const proxy = describeHeader(header, socket);
        // Every report from here on (tlsClientError, logs) names the client, not the proxy.
        record.peer = peerOf(proxy);
        const refused = this.settings.addressLimit?.admit(proxy, record) ?? null;
        if (refused !== null) {
          failWith(addressRefusal(refused, record.id, proxy.remoteAddress));
          return;
        }
        this.next.start(
          socket,
          record,
          (_record, served, info, handshake) => {
            if (finish()) done(record, served, { ...info, ...record.peer, proxy }, handshake);
          },
          (_record, error, kind) => {
            if (finish()) fail(record, error, kind === 'failed' && isHealthCheck(error, socket, headerEnd) ? 'healthCheck' : kind);
          },
        );
      },
      failWith,
    );
  }
}
