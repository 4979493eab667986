// A worker slot's setup failures by code and handshake-time histogram, in a SharedArrayBuffer
// of fixed size that the worker serving the slot writes where it counts them and the main
// thread reads only when stats() is called. Why not the addon's published counters: those are
// copied under the dispatcher's lock twice per connection, a fixed list of numbers (a failure's
// code may be OpenSSL's, unknown in advance), and a C++ change; this costs the worker a few
// stores per setup, the main thread nothing per connection, and no lock anyone waits on.
//
// One writer at a time: the worker serving the slot (a replacement starts after its
// predecessor's exit, and goes on adding to the same counts, as the slot's published counters
// do). Each write is wrapped in a sequence lock: `seq` is odd while the writer is inside, and a
// reader that saw it odd or changed reads again, so a snapshot never holds a torn float nor a
// count without its bucket. A writer stopped inside (terminate()) leaves `seq` odd: its
// successor evens it, and readers meanwhile take what they read after GIVE_UP_MS.
//
// Memory: CODE_SLOTS names of at most NAME_BYTES - 1 ASCII bytes; a code beyond either bound
// counts under OTHER_CODES. Under 2 KiB per worker slot (SETUP_BOOK_BYTES), whatever the traffic.
import { DURATION_BUCKETS, durationBucket, emptyDurations } from '../duration_histogram.js';
import type { DurationHistogramSnapshot } from '../duration_histogram.js';
import { codedError, ErrorCodes } from '../errors.js';

/** Distinct failure codes a worker slot names. */
export const CODE_SLOTS = 32;
const NAME_BYTES = 48;
/** Where failures of codes past CODE_SLOTS (or too long, or not ASCII) are counted. */
export const OTHER_CODES = 'other';

// Layout: Int32 [seq, names] | Float64 [failures x CODE_SLOTS, other, buckets..., count, sumMs] | names.
const SEQ = 0;
const NAMES = 1;
const HEADER_BYTES = 8;
const OTHER = CODE_SLOTS;
const FIRST_BUCKET = CODE_SLOTS + 1;
const COUNT = FIRST_BUCKET + DURATION_BUCKETS;
const SUM = COUNT + 1;
const FLOATS = SUM + 1;
const NAMES_OFFSET = HEADER_BYTES + FLOATS * Float64Array.BYTES_PER_ELEMENT;
export const SETUP_BOOK_BYTES = NAMES_OFFSET + CODE_SLOTS * NAME_BYTES;

/**
 * How long a reader waits for a write to end before it takes what it read. A write is three
 * stores: only a writer thread held off the CPU inside one (or stopped there) makes it wait.
 */
const GIVE_UP_MS = 50;

interface Views {
  header: Int32Array;
  floats: Float64Array;
  names: Uint8Array;
}

function viewsOf(buffer: SharedArrayBuffer): Views {
  if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== SETUP_BOOK_BYTES) {
    throw codedError(ErrorCodes.INVALID_OPTION, `a setup book is a SharedArrayBuffer of ${SETUP_BOOK_BYTES} bytes`);
  }
  return {
    header: new Int32Array(buffer, 0, 2),
    floats: new Float64Array(buffer, HEADER_BYTES, FLOATS),
    names: new Uint8Array(buffer, NAMES_OFFSET, CODE_SLOTS * NAME_BYTES),
  };
}

function nameAt(names: Uint8Array, index: number): string {
  const at = index * NAME_BYTES;
  return Buffer.from(names.buffer, names.byteOffset + at + 1, names[at]!).toString('latin1');
}

/** The worker's side: counts as its registry does, into the slot's buffer. */
export class SetupBookWriter {
  private readonly views: Views;
  /** Code -> its index, as written in the buffer (a predecessor's names included). */
  private readonly indexes = new Map<string, number>();

  constructor(buffer: SharedArrayBuffer) {
    this.views = viewsOf(buffer);
    // A predecessor stopped inside a write: this writer is the only one now.
    if (Atomics.load(this.views.header, SEQ) % 2 !== 0) Atomics.add(this.views.header, SEQ, 1);
    const known = Atomics.load(this.views.header, NAMES);
    for (let i = 0; i < known; i++) this.indexes.set(nameAt(this.views.names, i), i);
  }

  countFailure(code: string): void {
    const index = this.indexes.get(code) ?? this.name(code);
    const { header, floats } = this.views;
    Atomics.add(header, SEQ, 1);
    floats[index]!++;
    Atomics.add(header, SEQ, 1);
  }

  recordDuration(ms: number): void {
    const { header, floats } = this.views;
    const bucket = FIRST_BUCKET + durationBucket(ms);
    Atomics.add(header, SEQ, 1);
    floats[bucket]!++;
    floats[COUNT]!++;
    floats[SUM]! += ms;
    Atomics.add(header, SEQ, 1);
  }

  /** A new code's index: the next free name slot, or OTHER when there is none or it does not fit. */
  private name(code: string): number {
    const { header, names } = this.views;
    const next = Atomics.load(header, NAMES);
    if (next >= CODE_SLOTS || code.length >= NAME_BYTES || !/^[\x21-\x7e]+$/.test(code)) return OTHER;
    const at = next * NAME_BYTES;
    names[at] = Buffer.from(names.buffer, names.byteOffset + at + 1, NAME_BYTES - 1).write(code, 'latin1');
    // Published after its bytes: a reader that sees the count sees the name.
    Atomics.store(header, NAMES, next + 1);
    this.indexes.set(code, next);
    return next;
  }
}

export interface SetupBookSnapshot {
  setupFailures: Record<string, number>;
  handshakeTime: DurationHistogramSnapshot;
}

/** The main thread's side: owns the buffer it hands to each worker of the slot. */
export class SetupBookReader {
  readonly buffer = new SharedArrayBuffer(SETUP_BOOK_BYTES);
  private readonly views = viewsOf(this.buffer);
  /** Names decoded so far (they never change once written). */
  private readonly names: string[] = [];

  read(): SetupBookSnapshot {
    const { header, floats } = this.views;
    const copy = new Float64Array(FLOATS);
    let names = 0;
    let giveUpAt = 0;
    for (let tries = 1; ; tries++) {
      const before = Atomics.load(header, SEQ);
      names = Atomics.load(header, NAMES);
      copy.set(floats);
      if (before % 2 === 0 && Atomics.load(header, SEQ) === before) break;
      // The clock only once a write has been in the way for a while. Past the limit a count
      // may be one write ahead of its bucket, no worse.
      if (tries % 1024 !== 0) continue;
      const now = performance.now();
      if (giveUpAt === 0) giveUpAt = now + GIVE_UP_MS;
      else if (now > giveUpAt) break;
    }
    while (this.names.length < names) this.names.push(nameAt(this.views.names, this.names.length));
    const setupFailures: Record<string, number> = {};
    for (let i = 0; i < names; i++) if (copy[i]! > 0) setupFailures[this.names[i]!] = copy[i]!;
    if (copy[OTHER]! > 0) setupFailures[OTHER_CODES] = copy[OTHER]!;
    const handshakeTime = emptyDurations();
    handshakeTime.counts = Array.from(copy.subarray(FIRST_BUCKET, COUNT));
    handshakeTime.count = copy[COUNT]!;
    handshakeTime.sumMs = copy[SUM]!;
    return { setupFailures, handshakeTime };
  }
}
