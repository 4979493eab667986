// The type-length-value extensions after a version 2 header's addresses (section 2.2.7 on):
// each is a 1-byte type, a 2-byte big-endian length and the value. The known types are
// decoded; every TLV, unknown ones included, is kept as received.
import type { ProxySslInfo, ProxyTlv, ProxyTlvs } from './proxy_header.js';

export const PP2_TYPE_ALPN = 0x01;
export const PP2_TYPE_AUTHORITY = 0x02;
export const PP2_TYPE_CRC32C = 0x03;
export const PP2_TYPE_NOOP = 0x04;
export const PP2_TYPE_UNIQUE_ID = 0x05;
export const PP2_TYPE_SSL = 0x20;
export const PP2_SUBTYPE_SSL_VERSION = 0x21;
export const PP2_SUBTYPE_SSL_CN = 0x22;
export const PP2_SUBTYPE_SSL_CIPHER = 0x23;
export const PP2_SUBTYPE_SSL_SIG_ALG = 0x24;
export const PP2_SUBTYPE_SSL_KEY_ALG = 0x25;
export const PP2_TYPE_NETNS = 0x30;

export const PP2_CLIENT_SSL = 0x01;
export const PP2_CLIENT_CERT_CONN = 0x02;
export const PP2_CLIENT_CERT_SESS = 0x04;

const TLV_HEADER_BYTES = 3;
/**
 * Most TLVs in one list (the header's, or PP2_TYPE_SSL's sub-TLVs). Proxies send a handful; a
 * 65,535-byte header of 21,841 empty TLVs would cost an object and a view each (tens of ms of
 * CPU per connection), so a header with more is refused as malformed.
 */
export const MAX_TLVS = 256;
/** The spec's bound on PP2_TYPE_UNIQUE_ID. */
const MAX_UNIQUE_ID_BYTES = 128;
/** client (1 byte) and verify (4 bytes) before the SSL sub-TLVs. */
const SSL_FIXED_BYTES = 5;

export type TlvList = { kind: 'ok'; tlvs: ProxyTlv[] } | { kind: 'invalid'; reason: string };

/** Splits `bytes` into TLVs; each must fit whole. */
export function splitTlvs(bytes: Buffer): TlvList {
  const tlvs: ProxyTlv[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (bytes.length - at < TLV_HEADER_BYTES) return { kind: 'invalid', reason: 'a truncated TLV header' };
    const type = bytes.readUInt8(at);
    const length = bytes.readUInt16BE(at + 1);
    at += TLV_HEADER_BYTES;
    if (length > bytes.length - at) return { kind: 'invalid', reason: `TLV 0x${type.toString(16)} longer than the header holds` };
    if (tlvs.length === MAX_TLVS) return { kind: 'invalid', reason: `more than ${MAX_TLVS} TLVs` };
    tlvs.push({ type, value: bytes.subarray(at, at + length) });
    at += length;
  }
  return { kind: 'ok', tlvs };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes UTF-8 strictly: a TLV that claims text and is not is a malformed header. */
function text(value: Buffer): string | undefined {
  try {
    return utf8.decode(value);
  } catch {
    return undefined;
  }
}

type Decoded<T> = { kind: 'ok'; value: T } | { kind: 'invalid'; reason: string };

function decodeSsl(value: Buffer): Decoded<ProxySslInfo> {
  if (value.length < SSL_FIXED_BYTES) return { kind: 'invalid', reason: 'a PP2_TYPE_SSL TLV shorter than its 5 fixed bytes' };
  const client = value.readUInt8(0);
  const subs = splitTlvs(value.subarray(SSL_FIXED_BYTES));
  if (subs.kind === 'invalid') return { kind: 'invalid', reason: `in PP2_TYPE_SSL: ${subs.reason}` };
  const ssl: ProxySslInfo = {
    ssl: (client & PP2_CLIENT_SSL) !== 0,
    certInConnection: (client & PP2_CLIENT_CERT_CONN) !== 0,
    certInSession: (client & PP2_CLIENT_CERT_SESS) !== 0,
    verify: value.readUInt32BE(1),
    tlvs: subs.tlvs,
  };
  const fields: Record<number, 'version' | 'commonName' | 'cipher' | 'signatureAlgorithm' | 'keyAlgorithm'> = {
    [PP2_SUBTYPE_SSL_VERSION]: 'version',
    [PP2_SUBTYPE_SSL_CN]: 'commonName',
    [PP2_SUBTYPE_SSL_CIPHER]: 'cipher',
    [PP2_SUBTYPE_SSL_SIG_ALG]: 'signatureAlgorithm',
    [PP2_SUBTYPE_SSL_KEY_ALG]: 'keyAlgorithm',
  };
  for (const sub of subs.tlvs) {
    const field = fields[sub.type];
    if (field === undefined) continue;
    const decoded = text(sub.value);
    if (decoded === undefined) return { kind: 'invalid', reason: `PP2_TYPE_SSL sub-TLV 0x${sub.type.toString(16)} is not UTF-8` };
    ssl[field] = decoded;
  }
  return { kind: 'ok', value: ssl };
}

/** Decodes the known TLVs of `tlvs` (already split); CRC32C is checked by the caller. */
export function decodeTlvs(tlvs: ProxyTlv[]): Decoded<ProxyTlvs> {
  const decoded: ProxyTlvs = { tlvs };
  for (const tlv of tlvs) {
    switch (tlv.type) {
      case PP2_TYPE_ALPN:
      case PP2_TYPE_AUTHORITY:
      case PP2_TYPE_NETNS: {
        const value = text(tlv.value);
        if (value === undefined) return { kind: 'invalid', reason: `TLV 0x${tlv.type.toString(16)} is not UTF-8` };
        if (tlv.type === PP2_TYPE_ALPN) decoded.alpn = value;
        else if (tlv.type === PP2_TYPE_AUTHORITY) decoded.authority = value;
        else decoded.netns = value;
        break;
      }
      case PP2_TYPE_UNIQUE_ID:
        if (tlv.value.length > MAX_UNIQUE_ID_BYTES) return { kind: 'invalid', reason: `a PP2_TYPE_UNIQUE_ID over ${MAX_UNIQUE_ID_BYTES} bytes` };
        decoded.uniqueId = tlv.value;
        break;
      case PP2_TYPE_SSL: {
        const ssl = decodeSsl(tlv.value);
        if (ssl.kind === 'invalid') return ssl;
        decoded.ssl = ssl.value;
        break;
      }
      default:
        // NOOP, CRC32C (checked over the whole header) and unknown types: kept, not decoded.
        break;
    }
  }
  return { kind: 'ok', value: decoded };
}
