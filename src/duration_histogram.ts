// How long TLS setups take, in bounded memory: a fixed set of log-spaced buckets (powers of
// two from 1/16 ms to 16 s, and one over that) whose counts only grow. Counts since start let
// any reader (the CLI's live page, a Prometheus server) compute the percentiles of an interval
// from two snapshots' differences, which a running percentile could not give.

/** Upper bounds in ms: 2^-4 .. 2^14. A setup of exactly a bound counts in that bound's bucket. */
export const DURATION_BOUNDS_MS: readonly number[] = Array.from({ length: 19 }, (_, i) => 2 ** (i - 4));

const FIRST_EXPONENT = -4;
const LAST = DURATION_BOUNDS_MS.length;

/** Buckets a histogram has: one per bound, and one over the last. */
export const DURATION_BUCKETS = LAST + 1;

/** The bucket a duration of `ms` counts in. */
export function durationBucket(ms: number): number {
  // ceil(log2(ms)) is the exponent of the smallest power of two >= ms.
  return ms <= DURATION_BOUNDS_MS[0]! ? 0 : Math.min(LAST, Math.ceil(Math.log2(ms)) - FIRST_EXPONENT);
}

/** An empty snapshot, to add others into (mergeDurations). */
export function emptyDurations(): DurationHistogramSnapshot {
  return { boundsMs: [...DURATION_BOUNDS_MS], counts: new Array<number>(DURATION_BUCKETS).fill(0), count: 0, sumMs: 0 };
}

/** Adds `from` into `into` (same bounds: both from this file). */
export function mergeDurations(into: DurationHistogramSnapshot, from: DurationHistogramSnapshot): void {
  from.counts.forEach((count, i) => (into.counts[i] = (into.counts[i] ?? 0) + count));
  into.count += from.count;
  into.sumMs += from.sumMs;
}

export interface DurationHistogramSnapshot {
  /** Upper bounds (ms) of the buckets but the last, which has none. */
  boundsMs: number[];
  /** Per bucket (not cumulative): counts[i] took <= boundsMs[i] and > boundsMs[i - 1]; one more than bounds. */
  counts: number[];
  count: number;
  sumMs: number;
}

export class DurationHistogram {
  private readonly counts: number[] = new Array<number>(DURATION_BUCKETS).fill(0);
  private count = 0;
  private sumMs = 0;

  record(ms: number): void {
    this.counts[durationBucket(ms)]!++;
    this.count++;
    this.sumMs += ms;
  }

  snapshot(): DurationHistogramSnapshot {
    return { boundsMs: [...DURATION_BOUNDS_MS], counts: [...this.counts], count: this.count, sumMs: this.sumMs };
  }
}
