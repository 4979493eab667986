// Version 2 of the PROXY protocol: a 12-byte signature, version and command, address family
// and transport, a 2-byte length, then that many bytes of addresses and TLVs (section 2.2).
// Anything the spec says receivers must reject is rejected; a CRC32C TLV, when present, must
// match.
import { crc32c } from './crc32c.js';
import { ipv4Text, ipv6Text } from './ip_text.js';
import { INCOMPLETE, V2_FIXED_BYTES, V2_SIGNATURE, invalid, startsLike } from './proxy_header.js';
import type { ProxyHeader, ProxyHeaderParse, ProxyTlvs } from './proxy_header.js';
import { PP2_TYPE_CRC32C, decodeTlvs, splitTlvs } from './proxy_tlvs.js';

const VERSION_2 = 0x2;
const COMMAND_LOCAL = 0x0;
const COMMAND_PROXY = 0x1;
const AF_UNSPEC = 0x0;
const AF_INET = 0x1;
const AF_INET6 = 0x2;
const AF_UNIX = 0x3;
const TRANSPORT_UNSPEC = 0x0;
const TRANSPORT_STREAM = 0x1;
const TRANSPORT_DGRAM = 0x2;
/** Bytes of the address block per family: two addresses, then two ports for INET and INET6. */
const ADDRESS_BYTES: Record<number, number> = { [AF_UNSPEC]: 0, [AF_INET]: 12, [AF_INET6]: 36, [AF_UNIX]: 216 };
const UNIX_PATH_BYTES = 108;

/** A unix address: the path up to its first NUL (an abstract address starts with one and is kept whole, trailing NULs cut). */
function unixPath(bytes: Buffer): string {
  if (bytes[0] === 0) {
    let end = bytes.length;
    while (end > 1 && bytes[end - 1] === 0) end--;
    return `\0${bytes.subarray(1, end).toString('utf8')}`;
  }
  const nul = bytes.indexOf(0);
  return bytes.subarray(0, nul < 0 ? bytes.length : nul).toString('utf8');
}

/** A PROXY command's header, its addresses read from the address block at `at`. */
function proxyHeader(family: number, transport: 'stream' | 'dgram', bytes: Buffer, at: number, tlvs: ProxyTlvs): ProxyHeader {
  if (family === AF_INET || family === AF_INET6) {
    // Source address, destination address, source port, destination port.
    const v4 = family === AF_INET;
    const text = v4 ? ipv4Text : ipv6Text;
    const width = v4 ? 4 : 16;
    return {
      version: 2,
      command: 'proxy',
      transport,
      family: v4 ? 'IPv4' : 'IPv6',
      sourceAddress: text(bytes, at),
      destinationAddress: text(bytes, at + width),
      sourcePort: bytes.readUInt16BE(at + 2 * width),
      destinationPort: bytes.readUInt16BE(at + 2 * width + 2),
      tlvs,
    };
  }
  return {
    version: 2,
    command: 'proxy',
    transport,
    family: 'unix',
    sourceAddress: unixPath(bytes.subarray(at, at + UNIX_PATH_BYTES)),
    destinationAddress: unixPath(bytes.subarray(at + UNIX_PATH_BYTES, at + 2 * UNIX_PATH_BYTES)),
    tlvs,
  };
}

/** The header's CRC32C with its own value zeroed must equal that value (section 2.2.5). */
function crcMatches(header: Buffer, tlvStart: number, expected: Buffer): boolean {
  if (expected.length !== 4) return false;
  const copy = Buffer.from(header);
  const at = expected.byteOffset - header.byteOffset;
  // `expected` is a view into `header`, so its offset there is where the value sits.
  if (at < tlvStart || at + 4 > copy.length) return false;
  copy.fill(0, at, at + 4);
  return crc32c(copy) === expected.readUInt32BE(0);
}

/** Parses `bytes` (everything received so far) as a version 2 header. */
export function parseV2(bytes: Buffer): ProxyHeaderParse {
  if (!startsLike(bytes, V2_SIGNATURE)) return invalid('not a PROXY protocol header');
  if (bytes.length > 12) {
    const versionCommand = bytes.readUInt8(12);
    if (versionCommand >> 4 !== VERSION_2) return invalid(`version ${versionCommand >> 4} after the version 2 signature`);
    const command = versionCommand & 0x0f;
    if (command !== COMMAND_LOCAL && command !== COMMAND_PROXY) return invalid(`unknown version 2 command ${command}`);
  }
  if (bytes.length > 13) {
    const familyTransport = bytes.readUInt8(13);
    const family = familyTransport >> 4;
    const transport = familyTransport & 0x0f;
    // "Other values are unspecified and must not be emitted ... and must be rejected as invalid by receivers."
    if (family > AF_UNIX || transport > TRANSPORT_DGRAM || (family === AF_UNSPEC) !== (transport === TRANSPORT_UNSPEC)) {
      return invalid(`invalid version 2 family and transport byte 0x${familyTransport.toString(16).padStart(2, '0')}`);
    }
  }
  if (bytes.length < V2_FIXED_BYTES) return INCOMPLETE;
  const familyTransport = bytes.readUInt8(13);
  const family = familyTransport >> 4;
  const length = bytes.readUInt16BE(14);
  const command = bytes.readUInt8(12) & 0x0f;
  const total = V2_FIXED_BYTES + length;
  if (bytes.length < total) return INCOMPLETE;
  const addressBytes = ADDRESS_BYTES[family] ?? 0;
  // LOCAL: "the receiver must accept this connection as valid and must use the real connection
  // endpoints and discard the protocol block including the family", however short it is.
  if (command === COMMAND_LOCAL && length < addressBytes) return { kind: 'complete', header: { version: 2, command: 'local', tlvs: { tlvs: [] } }, length: total };
  if (length < addressBytes) return invalid(`a version 2 length of ${length}, shorter than its ${addressBytes}-byte addresses`);
  const tlvStart = V2_FIXED_BYTES + addressBytes;
  const tlvs = tlvStart === total ? { kind: 'ok' as const, value: { tlvs: [] } } : readTlvs(bytes.subarray(0, total), tlvStart);
  if (tlvs.kind === 'invalid') return invalid(tlvs.reason);
  // The addresses of LOCAL and of UNSPEC are not to be used; their TLVs still are.
  if (command === COMMAND_LOCAL || family === AF_UNSPEC) return { kind: 'complete', header: { version: 2, command: 'local', tlvs: tlvs.value }, length: total };
  const transport = (familyTransport & 0x0f) === TRANSPORT_STREAM ? 'stream' : 'dgram';
  return { kind: 'complete', header: proxyHeader(family, transport, bytes, V2_FIXED_BYTES, tlvs.value), length: total };
}

/** The TLVs of `header` (the whole header) from `tlvStart`: split, checked against a CRC32C TLV when there is one, the known ones decoded. */
function readTlvs(header: Buffer, tlvStart: number): { kind: 'ok'; value: ProxyTlvs } | { kind: 'invalid'; reason: string } {
  const split = splitTlvs(header.subarray(tlvStart));
  if (split.kind === 'invalid') return split;
  const crc = split.tlvs.find((tlv) => tlv.type === PP2_TYPE_CRC32C);
  if (crc !== undefined && !crcMatches(header, tlvStart, crc.value)) return { kind: 'invalid', reason: 'the PP2_TYPE_CRC32C checksum does not match the header' };
  return decodeTlvs(split.tlvs);
}
