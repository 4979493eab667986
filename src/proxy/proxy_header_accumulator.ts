// Collects a connection's first bytes until they settle its PROXY protocol header, however
// the client cuts them into reads. Bounded: while open it holds at most the largest header
// the accepted versions allow (107 bytes for version 1, 16 + 65535 for version 2) plus the
// read that settles it; CPU is linear in the bytes (chunks are joined only when a parse can
// say more: per byte for the first 16 bytes or a version 1 line, then once the declared
// version 2 length is in).
import { Buffer } from 'node:buffer';
import { parseV1 } from './proxy_v1.js';
import { parseV2 } from './proxy_v2.js';
import { V1_PREFIX, V2_FIXED_BYTES, V2_SIGNATURE } from './proxy_header.js';
import type { ProxyHeader, ProxyHeaderParse } from './proxy_header.js';

/** Which header versions a listener accepts. */
export type ProxyProtocolMode = 'v1' | 'v2' | 'any';

export type AccumulatedProxyHeader =
  | { kind: 'incomplete' }
  /** `rest`: what the client sent after the header (the start of its own stream), to put back. */
  | { kind: 'complete'; header: ProxyHeader; rest: Buffer }
  | { kind: 'invalid'; reason: string };

const INCOMPLETE: AccumulatedProxyHeader = { kind: 'incomplete' };

/**
 * Parses a connection's first bytes as a header of a version `mode` accepts. The native reader
 * (src/proxy/proxy_setup.ts) calls it once on exactly the header's bytes; the accumulator below
 * on what has come so far.
 */
export function parseProxyHeader(mode: ProxyProtocolMode, bytes: Buffer): ProxyHeaderParse {
  const first = bytes[0];
  if (first === V1_PREFIX[0] && mode !== 'v2') return parseV1(bytes);
  if (first === V2_SIGNATURE[0] && mode !== 'v1') return parseV2(bytes);
  if (first === V1_PREFIX[0] || first === V2_SIGNATURE[0]) {
    return { kind: 'invalid', reason: `a version ${first === V1_PREFIX[0] ? 1 : 2} PROXY protocol header where only ${mode} is accepted` };
  }
  return { kind: 'invalid', reason: 'no PROXY protocol header: the connection did not start with one' };
}

export class ProxyHeaderAccumulator {
  private chunks: Buffer[] = [];
  private held = 0;
  private peak = 0;
  /** Bytes to hold before parsing again. */
  private needed = 1;
  private settled: AccumulatedProxyHeader | undefined;

  constructor(private readonly mode: ProxyProtocolMode) {}

  get bufferedBytes(): number {
    return this.held;
  }

  get peakBufferedBytes(): number {
    return this.peak;
  }

  /** Adds the next chunk; once the answer is not 'incomplete' it stays the same. */
  push(chunk: Buffer): AccumulatedProxyHeader {
    if (this.settled !== undefined) return this.settled;
    this.chunks.push(chunk);
    this.held += chunk.length;
    this.peak = Math.max(this.peak, this.held);
    if (this.held < this.needed) return INCOMPLETE;
    const bytes = this.chunks.length === 1 && this.chunks[0] !== undefined ? this.chunks[0] : Buffer.concat(this.chunks, this.held);
    this.chunks = [bytes];
    const parsed = parseProxyHeader(this.mode, bytes);
    if (parsed.kind === 'invalid') return this.finish(parsed);
    if (parsed.kind === 'complete') return this.finish({ kind: 'complete', header: parsed.header, rest: bytes.subarray(parsed.length) });
    // Version 2 says its length in its 16th byte; until then, and for version 1, each byte may settle it.
    this.needed = this.held >= V2_FIXED_BYTES && bytes[0] === V2_SIGNATURE[0] ? V2_FIXED_BYTES + bytes.readUInt16BE(14) : this.held + 1;
    return INCOMPLETE;
  }

  private finish(answer: AccumulatedProxyHeader): AccumulatedProxyHeader {
    this.settled = answer;
    this.chunks = [];
    this.held = 0;
    return answer;
  }
}
