// Parses the TLS ClientHello a client sends first, so the listener learns the SNI name and
// the client's ALPN preference list before it creates the tls.TLSSocket (Node selects ALPN
// by server preference and aborts the handshake on no overlap; see alpn.ts).
//
// Every byte here comes from an unauthenticated peer, so the parser is written to fail
// closed and cheaply:
// - every length is checked against the length that encloses it (past it: invalid) and
//   against the bytes actually held (past them: incomplete), never trusted to allocate;
// - nothing is allocated from a declared length: the one buffer (reassembly of a fragmented
//   hello) is sized by the input, and the rest (names, the extension set) by what they parse;
// - every loop advances by at least one byte through a bounded input;
// - every input gets an answer, never an exception: internal `Stop`s carry it out of any
//   depth and are caught at the top.
import { Buffer } from 'node:buffer';

/**
 * Most input bytes buffered while waiting for a whole ClientHello: 16 KiB of handshake
 * message (one maximum-size TLS record's worth, 2^14) plus the 5-byte headers of up to four
 * records carrying it. Real hellos are far smaller (Node, openssl s_client and curl send
 * 300-520 bytes; browsers sending post-quantum key shares ~1.8 KiB): ample headroom for legitimate
 * clients, while a client can never make one connection hold more than ~16 KiB here.
 * A hello whose declared lengths need more than this is rejected as soon as the lengths
 * are seen, not when the bytes arrive.
 */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024 + 5 * 4;

export type ClientHelloParse =
  /** More bytes could still complete a valid hello (only ever while input < the cap). */
  | { kind: 'incomplete' }
  /**
   * `alpnProtocols` is in the client's order, [] without the extension; `bytesUsed` is the
   * end of the last record carrying the hello (what follows, e.g. early data, is not ours).
   */
  | { kind: 'complete'; servername?: string; alpnProtocols: string[]; bytesUsed: number }
  /** Not a TLS ClientHello, malformed, or needing more than MAX_CLIENT_HELLO_BYTES. */
  | { kind: 'invalid'; reason: string };

type Incomplete = Extract<ClientHelloParse, { kind: 'incomplete' }>;
type Invalid = Extract<ClientHelloParse, { kind: 'invalid' }>;

// Exported for the reader, which follows the same framing as bytes arrive.
export const RECORD_HEADER_BYTES = 5;
export const CONTENT_TYPE_HANDSHAKE = 22;
// RFC 8446 5.1: a plaintext record body is at most 2^14 bytes; more is record_overflow.
export const MAX_RECORD_BODY_BYTES = 1 << 14;
export const HANDSHAKE_HEADER_BYTES = 4;
export const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
const EXTENSION_ALPN = 16;
const NAME_TYPE_HOST_NAME = 0;
// RFC 6066 3 / DNS: a host name is at most 255 bytes.
const MAX_HOST_NAME_BYTES = 255;

const INCOMPLETE: Incomplete = { kind: 'incomplete' };

/**
 * Carries the answer out of any depth of the parser; parseClientHello catches it, so it never
 * escapes. Not an Error: a client can trigger this at will, so no stack is captured.
 */
class Stop {
  constructor(readonly result: Incomplete | Invalid) {}
}

function invalid(reason: string): Stop {
  return new Stop({ kind: 'invalid', reason });
}

function overCap(needed: number): Stop {
  return invalid(`ClientHello too large: needs at least ${needed} bytes, over the ${MAX_CLIENT_HELLO_BYTES}-byte cap`);
}

export function parseClientHello(data: Uint8Array): ClientHelloParse {
  try {
    return parse(data);
  } catch (error) {
    if (error instanceof Stop) return error.result;
    // Anything else is a bug in this file, not a property of the input; hiding it as
    // 'invalid' would silently turn valid clients away, so it is left to surface.
    throw error;
  }
}

function parse(data: Uint8Array): ClientHelloParse {
  const { message, bytesUsed } = reassemble(data);
  if (message.length >= HANDSHAKE_HEADER_BYTES) {
    const end = HANDSHAKE_HEADER_BYTES + readUint24(message, 1);
    // Parsed even while bytes are missing: a malformed field is reported as soon as it is
    // seen, and a read that runs out of bytes (not out of its declared length) stops with
    // 'incomplete'.
    const hello = parseClientHelloBody(new Reader(message, HANDSHAKE_HEADER_BYTES, end, 'the ClientHello'));
    if (bytesUsed !== undefined) return { kind: 'complete', ...hello, bytesUsed };
  }
  // Unreachable by construction (reassemble rejects anything whose framing reaches the cap);
  // checked anyway because "never wait past the cap" is the contract callers rely on.
  if (data.length >= MAX_CLIENT_HELLO_BYTES) throw overCap(data.length);
  return INCOMPLETE;
}

interface Reassembled {
  /** The handshake bytes held so far, record headers removed (all of them once complete). */
  message: Uint8Array;
  /** Set once every record carrying the hello has been received in full. */
  bytesUsed?: number;
}

/**
 * Walks the records and joins their bodies into the handshake message. A ClientHello may be
 * fragmented across records (RFC 8446 5.1), even inside its 4-byte header.
 */
function reassemble(data: Uint8Array): Reassembled {
  let message: Uint8Array = data.subarray(0, 0);
  let joined: Uint8Array | undefined;
  let declared = 0; // sum of the record lengths seen, whether or not their bytes have arrived
  let messageEnd: number | undefined; // handshake header + body length, once known
  let offset = 0;
  for (;;) {
    if (offset + RECORD_HEADER_BYTES > MAX_CLIENT_HELLO_BYTES) throw overCap(offset + RECORD_HEADER_BYTES);
    checkRecordHeaderPrefix(data, offset);
    if (offset + RECORD_HEADER_BYTES > data.length) return { message };

    const length = readUint16(data, offset + 3);
    // RFC 8446 5.1 forbids empty handshake fragments; refusing them also means every record
    // moves us at least 6 bytes on.
    if (length === 0) throw invalid('empty handshake record');
    if (length > MAX_RECORD_BODY_BYTES) throw invalid(`record length ${length} exceeds the TLS maximum of ${MAX_RECORD_BODY_BYTES}`);
    const recordEnd = offset + RECORD_HEADER_BYTES + length;
    if (recordEnd > MAX_CLIENT_HELLO_BYTES) throw overCap(recordEnd);

    const fragment = data.subarray(offset + RECORD_HEADER_BYTES, Math.min(recordEnd, data.length));
    if (declared === 0) {
      message = fragment; // the usual single-record hello: a view, no copy
    } else {
      // All fragments together are no longer than the input, so neither is this buffer.
      if (joined === undefined) {
        joined = new Uint8Array(data.length);
        joined.set(message);
      }
      joined.set(fragment, message.length);
      message = joined.subarray(0, message.length + fragment.length);
    }
    declared += length;

    const type = message[0];
    if (type !== undefined && type !== HANDSHAKE_CLIENT_HELLO) {
      throw invalid(`first handshake message has type ${type}, not ClientHello (${HANDSHAKE_CLIENT_HELLO})`);
    }
    if (messageEnd === undefined && message.length >= HANDSHAKE_HEADER_BYTES) {
      messageEnd = HANDSHAKE_HEADER_BYTES + readUint24(message, 1);
    }
    if (messageEnd !== undefined) {
      // Nothing may follow a ClientHello in its records: the client must wait for the server
      // (TLS 1.2), or change keys first (TLS 1.3; handshake messages must not span that).
      if (declared > messageEnd) throw invalid('handshake records carry data after the ClientHello');
      // Fewest bytes that could finish the hello: the rest in one more record.
      const fewest = declared === messageEnd ? recordEnd : recordEnd + RECORD_HEADER_BYTES + (messageEnd - declared);
      if (fewest > MAX_CLIENT_HELLO_BYTES) throw overCap(fewest);
    }

    if (recordEnd > data.length) return { message };
    if (declared === messageEnd) return { message, bytesUsed: recordEnd };
    offset = recordEnd;
  }
}

/** Checks whichever of a record header's fixed bytes have arrived, so junk fails at once. */
function checkRecordHeaderPrefix(data: Uint8Array, offset: number): void {
  const contentType = data[offset];
  if (contentType !== undefined && contentType !== CONTENT_TYPE_HANDSHAKE) {
    if (offset === 0 && (contentType & 0x80) !== 0) throw invalid('SSLv2-style ClientHello is not supported');
    if (offset === 0) throw invalid(`not a TLS handshake record (first byte 0x${hex(contentType)})`);
    throw invalid(`ClientHello interrupted by a record of content type ${contentType}`);
  }
  const major = data[offset + 1];
  if (major !== undefined && major !== 3) {
    throw invalid(`record version 0x${hex(major)}${hex(data[offset + 2] ?? 0)} is not 0x03xx`);
  }
}

interface HelloFields {
  servername?: string;
  alpnProtocols: string[];
}

/** RFC 8446 4.1.2 (and the TLS 1.0-1.2 layout, which is the same on the wire). */
function parseClientHelloBody(r: Reader): HelloFields {
  const major = r.uint8('legacy_version');
  r.uint8('legacy_version');
  if (major !== 3) throw invalid(`ClientHello version major ${major} is not 3`);
  r.skip(32, 'random');
  r.vector(1, 'legacy_session_id', 0, 32);
  const suites = r.vector(2, 'cipher_suites', 2, 0xfffe);
  if (suites.remaining % 2 !== 0) throw invalid(`cipher_suites length ${suites.remaining} is odd`);
  r.vector(1, 'legacy_compression_methods', 1, 0xff);
  const fields: HelloFields = { alpnProtocols: [] };
  // Hellos from before extensions existed simply end here.
  if (r.atEnd()) return fields;
  const extensions = r.vector(2, 'extensions', 0, 0xffff);
  r.expectEnd();

  // Bounded by the extension block (at most 16383 4-byte entries).
  const seen = new Set<number>();
  while (!extensions.atEnd()) {
    const type = extensions.uint16('extension type');
    const body = extensions.vector(2, `extension ${type}`, 0, 0xffff);
    // RFC 8446 4.2: at most one extension of each type.
    if (seen.has(type)) throw invalid(`duplicate extension ${type}`);
    seen.add(type);
    if (type === EXTENSION_SERVER_NAME) {
      const servername = parseServerName(body);
      if (servername !== undefined) fields.servername = servername;
    } else if (type === EXTENSION_ALPN) {
      fields.alpnProtocols = parseAlpn(body);
    }
  }
  return fields;
}

/** RFC 6066 3: ServerNameList <1..2^16-1> of { NameType; HostName <1..2^16-1> }. */
function parseServerName(body: Reader): string | undefined {
  const list = body.vector(2, 'server_name list', 1, 0xffff);
  body.expectEnd();
  let hostName: string | undefined;
  while (!list.atEnd()) {
    const nameType = list.uint8('server name type');
    const name = list.vector(2, 'server name', 1, 0xffff);
    // No other name type was ever defined; RFC 6066 has servers skip unknown ones.
    if (nameType !== NAME_TYPE_HOST_NAME) continue;
    if (hostName !== undefined) throw invalid('more than one host_name in server_name');
    if (name.remaining > MAX_HOST_NAME_BYTES) {
      throw invalid(`server name is ${name.remaining} bytes, over ${MAX_HOST_NAME_BYTES}`);
    }
    const bytes = name.rest('server name');
    // Host names are ASCII (IDNs travel as A-labels). Visible characters only: no controls,
    // NULs, spaces or high bytes that could confuse certificate lookup or logs.
    for (const byte of bytes) {
      if (byte < 0x21 || byte > 0x7e) throw invalid(`server name has byte 0x${hex(byte)}`);
    }
    hostName = latin1(bytes);
  }
  return hostName;
}

/** RFC 7301 3.1: ProtocolNameList <2..2^16-1> of ProtocolName <1..2^8-1>. */
function parseAlpn(body: Reader): string[] {
  const list = body.vector(2, 'ALPN protocol list', 2, 0xffff);
  body.expectEnd();
  const protocols: string[] = [];
  while (!list.atEnd()) {
    protocols.push(latin1(list.vector(1, 'ALPN protocol name', 1, 0xff).rest('ALPN protocol name')));
  }
  return protocols;
}

/**
 * Protocol names are opaque bytes. Node reports `tlsSocket.alpnProtocol` as a one-byte string
 * of the raw bytes (each byte one code point, i.e. ISO-8859-1), and alpn.ts encodes names
 * back with 'latin1', so decoding the same way makes names round-trip and compare equal to
 * Node's. UTF-8 would mangle non-UTF-8 bytes, and TextDecoder('latin1') is really
 * windows-1252 (0x80-0x9f differ), so Buffer's 'latin1' it is. A view, not a copy.
 */
function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

function readUint16(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) << 8) | (bytes[at + 1] ?? 0);
}

function readUint24(bytes: Uint8Array, at: number): number {
  return ((bytes[at] ?? 0) << 16) | ((bytes[at + 1] ?? 0) << 8) | (bytes[at + 2] ?? 0);
}

/**
 * A cursor over one length-delimited field. Two bounds: `end`, where the field's declared
 * length says it stops (reading past it means the hello is malformed), and the bytes held
 * (reading past them only means more must arrive).
 */
class Reader {
  constructor(
    private readonly bytes: Uint8Array,
    private pos: number,
    private readonly end: number,
    private readonly what: string,
  ) {}

  /** Declared bytes not yet read (a fresh field's whole length). */
  get remaining(): number {
    return this.end - this.pos;
  }

  atEnd(): boolean {
    return this.pos >= this.end;
  }

  expectEnd(): void {
    if (this.pos !== this.end) throw invalid(`${this.end - this.pos} unexpected bytes at the end of ${this.what}`);
  }

  uint8(field: string): number {
    return this.bytes[this.take(1, field)] ?? 0;
  }

  uint16(field: string): number {
    return readUint16(this.bytes, this.take(2, field));
  }

  skip(count: number, field: string): void {
    this.take(count, field);
  }

  /** Everything left in this field, which must all have arrived. */
  rest(field: string): Uint8Array {
    const start = this.take(this.end - this.pos, field);
    return this.bytes.subarray(start, this.end);
  }

  /**
   * A sub-field prefixed by a `prefixBytes`-byte length in [min, max]. This cursor moves past
   * it even if its bytes have not all arrived, so the sub-field can be checked as far as it
   * goes and the next read here reports the shortfall.
   */
  vector(prefixBytes: 1 | 2, field: string, min: number, max: number): Reader {
    const length = prefixBytes === 1 ? this.uint8(`${field} length`) : this.uint16(`${field} length`);
    if (length < min || length > max) throw invalid(`${field} length ${length} is outside ${min}..${max}`);
    const start = this.pos;
    if (start + length > this.end) throw invalid(`${field} (${length} bytes) runs past the end of ${this.what}`);
    this.pos = start + length;
    return new Reader(this.bytes, start, start + length, field);
  }

  private take(count: number, field: string): number {
    const start = this.pos;
    if (start + count > this.end) throw invalid(`${field} runs past the end of ${this.what}`);
    if (start + count > this.bytes.length) throw new Stop(INCOMPLETE);
    this.pos = start + count;
    return start;
  }
}
