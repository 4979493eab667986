// What a PROXY protocol header (HAProxy's doc/proxy-protocol.txt, versions 1 and 2) says about
// a connection that a load balancer accepted and relayed: the client's real address and the
// address it connected to, plus (version 2) type-length-value extensions.

/** Version 1 is one text line, at most 107 bytes with its CRLF (section 2.1). */
export const V1_MAX_BYTES = 107;
export const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

/** Version 2 starts with this 12-byte signature (section 2.2); it can never start an HTTP or TLS stream. */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Signature, version and command, family and transport, and the 2-byte length. */
export const V2_FIXED_BYTES = 16;
/** The 16-bit length field bounds a version 2 header. */
export const V2_MAX_BYTES = V2_FIXED_BYTES + 0xffff;

export type ProxyProtocolVersion = 1 | 2;

/** The family of the addresses the header carries. */
export type ProxyFamily = 'IPv4' | 'IPv6' | 'unix' | 'unspec';

/** The SSL extension (PP2_TYPE_SSL): how the client reached the proxy, when over TLS. */
export interface ProxySslInfo {
  /** PP2_CLIENT_SSL: the client connected over SSL/TLS. */
  ssl: boolean;
  /** PP2_CLIENT_CERT_CONN: the client sent a certificate on this connection. */
  certInConnection: boolean;
  /** PP2_CLIENT_CERT_SESS: the client sent a certificate at least once in this TLS session. */
  certInSession: boolean;
  /** 0 when the client presented a certificate and it was verified. */
  verify: number;
  /** PP2_SUBTYPE_SSL_VERSION, e.g. 'TLSv1.3'. */
  version?: string;
  /** PP2_SUBTYPE_SSL_CN: the client certificate's subject common name. */
  commonName?: string;
  /** PP2_SUBTYPE_SSL_CIPHER, e.g. 'TLS_AES_256_GCM_SHA384'. */
  cipher?: string;
  /** PP2_SUBTYPE_SSL_SIG_ALG: the certificate's signature algorithm. */
  signatureAlgorithm?: string;
  /** PP2_SUBTYPE_SSL_KEY_ALG: the certificate's key algorithm. */
  keyAlgorithm?: string;
  /** Every sub-TLV as received, known ones included. */
  tlvs: ProxyTlv[];
}

/** One type-length-value extension as received. */
export interface ProxyTlv {
  type: number;
  value: Buffer;
}

/** The extensions of a version 2 header: the known ones decoded, every one kept in `tlvs`. */
export interface ProxyTlvs {
  /** PP2_TYPE_ALPN: the protocol the client negotiated with the proxy. */
  alpn?: string;
  /** PP2_TYPE_AUTHORITY: the host name the client asked for (its SNI), UTF-8. */
  authority?: string;
  /** PP2_TYPE_UNIQUE_ID: an opaque id of the connection, up to 128 bytes. */
  uniqueId?: Buffer;
  /** PP2_TYPE_SSL. */
  ssl?: ProxySslInfo;
  /** PP2_TYPE_NETNS: the network namespace the proxy accepted the connection in. */
  netns?: string;
  /** Every TLV as received, in order, unknown and NOOP ones included. */
  tlvs: ProxyTlv[];
}

/**
 * A parsed header. `command: 'local'` (v2 LOCAL, v1 UNKNOWN, or v2 PROXY over UNSPEC) carries
 * no usable addresses: the connection is the proxy's own (a health check), and its socket's
 * own addresses are the ones to use.
 */
export type ProxyHeader =
  | { version: ProxyProtocolVersion; command: 'local'; tlvs: ProxyTlvs }
  | {
      version: ProxyProtocolVersion;
      command: 'proxy';
      family: 'IPv4' | 'IPv6' | 'unix';
      /** 'stream' (TCP, or a stream unix socket) or 'dgram' (v2 only). */
      transport: 'stream' | 'dgram';
      sourceAddress: string;
      destinationAddress: string;
      /** Absent for unix addresses. */
      sourcePort?: number;
      destinationPort?: number;
      tlvs: ProxyTlvs;
    };

/** The outcome of parsing the bytes received so far. */
export type ProxyHeaderParse =
  | { kind: 'incomplete' }
  /** `length`: how many bytes the header took; what follows is the client's own stream. */
  | { kind: 'complete'; header: ProxyHeader; length: number }
  | { kind: 'invalid'; reason: string };

export const INCOMPLETE: ProxyHeaderParse = { kind: 'incomplete' };

export function invalid(reason: string): ProxyHeaderParse {
  return { kind: 'invalid', reason };
}

/** The bytes received so far are a prefix of `expected` (or contain it whole). */
export function startsLike(bytes: Uint8Array, expected: Uint8Array): boolean {
  const n = Math.min(bytes.length, expected.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== expected[i]) return false;
  return true;
}
