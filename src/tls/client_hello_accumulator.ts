// Collects a connection's first bytes until they settle the ClientHello, for a client that
// controls how those bytes are cut into records and into reads. Three promises:
// - memory: while the answer is open it holds at most MAX_CLIENT_HELLO_BYTES; the read that
//   settles it may add one chunk, and everything is let go once it is settled;
// - CPU linear in the bytes: chunks are kept as they came (never re-joined per read), and only
//   the record framing is followed as bytes arrive (each 5-byte record header and the 4-byte
//   handshake header; record bodies are skipped), so each byte is looked at once;
// - one parse: the parser runs once, on a single concatenation, when the framing shows that
//   the answer is known: the records hold the whole hello, or a header breaks the framing or
//   the cap. The parser alone decides what the answer is; the framing only decides when.
import { Buffer } from 'node:buffer';
import {
  CONTENT_TYPE_HANDSHAKE,
  HANDSHAKE_CLIENT_HELLO,
  HANDSHAKE_HEADER_BYTES,
  MAX_CLIENT_HELLO_BYTES,
  MAX_RECORD_BODY_BYTES,
  RECORD_HEADER_BYTES,
  parseClientHello,
} from './client_hello.js';

export type AccumulatedHello =
  | { kind: 'incomplete' }
  /** `bytes` is everything received so far (the hello and whatever followed it), to put back. */
  | { kind: 'complete'; servername?: string; alpnProtocols: string[]; bytes: Buffer }
  /**
   * Not a hello the parser can read, or over the cap: `bytes` is everything received so far,
   * to put back for OpenSSL, which answers it as it would any client's bytes.
   */
  | { kind: 'invalid'; reason: string; bytes: Buffer };

const INCOMPLETE: AccumulatedHello = { kind: 'incomplete' };
const TLS_MAJOR_VERSION = 3;

export class ClientHelloAccumulator {
  private chunks: Buffer[] = [];
  private held = 0;
  private peak = 0;
  private settled: AccumulatedHello | undefined;

  // The framing, mirrored from the parser's reassembly (client_hello.ts) one byte at a time.
  /** Stream offset of the record whose header is being read, or whose body is arriving. */
  private recordStart = 0;
  private readonly recordHeader = new Uint8Array(RECORD_HEADER_BYTES);
  private recordHeaderHave = 0;
  private recordEnd = 0;
  private bodyLeft = 0;
  /** Sum of the record lengths declared so far, whether or not their bodies have arrived. */
  private declared = 0;
  private readonly messageHeader = new Uint8Array(HANDSHAKE_HEADER_BYTES);
  private messageHeaderHave = 0;
  /** Handshake header plus body length, once all four header bytes are in. */
  private messageEnd: number | undefined;

  /** Bytes held now (0 once settled). */
  get bufferedBytes(): number {
    return this.held;
  }

  /** The most bytes ever held at once, the settling chunk included. */
  get peakBufferedBytes(): number {
    return this.peak;
  }

  /** Adds the next chunk; once the answer is not 'incomplete' it stays the same. */
  push(chunk: Buffer): AccumulatedHello {
    if (this.settled !== undefined) return this.settled;
    this.chunks.push(chunk);
    this.held += chunk.length;
    this.peak = Math.max(this.peak, this.held);
    if (this.answerIsKnown(chunk)) return this.settle();
    // Unreachable while the framing mirrors the parser (every record header is checked against
    // the cap as it arrives); kept because "never hold more than the cap" is the promise.
    if (this.held > MAX_CLIENT_HELLO_BYTES) {
      return this.finish({ kind: 'invalid', reason: `ClientHello too large: over the ${MAX_CLIENT_HELLO_BYTES}-byte cap`, bytes: this.joined() });
    }
    return INCOMPLETE;
  }

  /** Follows the framing through `chunk`; true as soon as the parser can answer. */
  private answerIsKnown(chunk: Buffer): boolean {
    let at = 0;
    while (at < chunk.length) {
      if (this.recordHeaderHave < RECORD_HEADER_BYTES) {
        // A record starting this late cannot fit under the cap (the parser: "needs at least").
        if (this.recordHeaderHave === 0 && this.recordStart + RECORD_HEADER_BYTES > MAX_CLIENT_HELLO_BYTES) return true;
        if (this.takeRecordHeaderByte(chunk[at++] ?? 0)) return true;
        continue;
      }
      const take = Math.min(this.bodyLeft, chunk.length - at);
      for (let i = 0; i < take && this.messageHeaderHave < HANDSHAKE_HEADER_BYTES; i++) {
        if (this.takeMessageHeaderByte(chunk[at + i] ?? 0)) return true;
      }
      at += take;
      this.bodyLeft -= take;
      if (this.bodyLeft === 0) {
        // A whole record is in: with the whole hello declared, the parser can finish it.
        if (this.messageEnd !== undefined && this.declared >= this.messageEnd) return true;
        this.recordStart = this.recordEnd;
        this.recordHeaderHave = 0;
      }
    }
    return false;
  }

  private takeRecordHeaderByte(byte: number): boolean {
    this.recordHeader[this.recordHeaderHave++] = byte;
    if (this.recordHeaderHave === 1) return byte !== CONTENT_TYPE_HANDSHAKE;
    if (this.recordHeaderHave === 2) return byte !== TLS_MAJOR_VERSION;
    if (this.recordHeaderHave < RECORD_HEADER_BYTES) return false;
    const length = ((this.recordHeader[3] ?? 0) << 8) | (this.recordHeader[4] ?? 0);
    if (length === 0 || length > MAX_RECORD_BODY_BYTES) return true;
    this.recordEnd = this.recordStart + RECORD_HEADER_BYTES + length;
    if (this.recordEnd > MAX_CLIENT_HELLO_BYTES) return true;
    this.declared += length;
    this.bodyLeft = length;
    return this.cannotEndWell();
  }

  private takeMessageHeaderByte(byte: number): boolean {
    this.messageHeader[this.messageHeaderHave++] = byte;
    if (this.messageHeaderHave === 1) return byte !== HANDSHAKE_CLIENT_HELLO;
    if (this.messageHeaderHave < HANDSHAKE_HEADER_BYTES) return false;
    const bodyLength = ((this.messageHeader[1] ?? 0) << 16) | ((this.messageHeader[2] ?? 0) << 8) | (this.messageHeader[3] ?? 0);
    this.messageEnd = HANDSHAKE_HEADER_BYTES + bodyLength;
    return this.cannotEndWell();
  }

  /**
   * The parser's two checks once the hello's length is known: records declaring more than the
   * hello, or no way left to finish it under the cap (the rest in one more record).
   */
  private cannotEndWell(): boolean {
    if (this.messageEnd === undefined) return false;
    if (this.declared > this.messageEnd) return true;
    const fewest =
      this.declared === this.messageEnd ? this.recordEnd : this.recordEnd + RECORD_HEADER_BYTES + (this.messageEnd - this.declared);
    return fewest > MAX_CLIENT_HELLO_BYTES;
  }

  private settle(): AccumulatedHello {
    const bytes = this.joined();
    const parsed = parseClientHello(bytes);
    if (parsed.kind === 'complete') {
      const { servername, alpnProtocols } = parsed;
      return this.finish(servername !== undefined ? { kind: 'complete', servername, alpnProtocols, bytes } : { kind: 'complete', alpnProtocols, bytes });
    }
    if (parsed.kind === 'invalid') return this.finish({ kind: 'invalid', reason: parsed.reason, bytes });
    // The framing said the parser could answer and it could not: a bug in one of the two. A
    // client can reach this at will if it exists, so stop waiting (OpenSSL reads the bytes)
    // rather than wait or throw.
    return this.finish({ kind: 'invalid', reason: 'the ClientHello framing and its parser disagree', bytes });
  }

  /** Every byte held, in order: one concatenation (none for a single chunk). */
  private joined(): Buffer {
    return this.chunks.length === 1 && this.chunks[0] !== undefined ? this.chunks[0] : Buffer.concat(this.chunks, this.held);
  }

  private finish(answer: AccumulatedHello): AccumulatedHello {
    this.settled = answer;
    this.chunks = [];
    this.held = 0;
    return answer;
  }
}
