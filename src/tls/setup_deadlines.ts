// The setup deadlines of one listener. Every connection's setup gets the same time
// (handshakeTimeout), so the deadlines expire in the order they were set: one queue and one
// timer serve them all, instead of a setTimeout and a clearTimeout per connection (a profile at
// one client at a time put Node's timers at about 2% of the server's CPU, most of it those two
// calls). A finished setup only marks its entry; entries leave the queue when the timer passes
// them, so the queue holds at most what the listener accepted within one handshakeTimeout.
// The same queue bounds other per-connection waits of one fixed length (gracefulCloseTimeout).
// `expire` is called with the deadline's target, so a module-level function serves every
// connection, with no closure made per connection.

/** One connection's deadline; `SetupDeadlines.cancel()` it when its setup ends first. */
export interface SetupDeadline {
  readonly at: number;
  expire: ((target: unknown) => void) | null;
  /** Dropped with `expire` on cancel: a finished connection is not kept until the timer passes. */
  target: unknown;
}

export class SetupDeadlines {
  private entries: SetupDeadline[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly timeoutMs: number) {}

  /** Calls `expire(target)` once the timeout has passed, unless the deadline is cancelled first. */
  add(expire: () => void): SetupDeadline;
  add<T>(expire: (target: T) => void, target: T): SetupDeadline;
  add(expire: (target: unknown) => void, target?: unknown): SetupDeadline {
    const deadline: SetupDeadline = { at: performance.now() + this.timeoutMs, expire, target };
    this.entries.push(deadline);
    if (this.timer === null) this.arm(this.timeoutMs);
    return deadline;
  }

  static cancel(deadline: SetupDeadline): void {
    deadline.expire = null;
    deadline.target = undefined;
  }

  /** Deadlines still waiting (cancelled ones included until the timer passes them). */
  get size(): number {
    return this.entries.length - this.head;
  }

  private arm(delayMs: number): void {
    // Unref'd: a connection in setup keeps the process alive by its own handle, and a listener
    // closed with deadlines left must not be held open by them.
    this.timer = setTimeout(() => this.fire(), Math.max(1, Math.ceil(delayMs)));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = null;
    const now = performance.now();
    while (this.head < this.entries.length) {
      const deadline = this.entries[this.head] as SetupDeadline;
      // Node may run the timer a fraction of a millisecond before `at` by this clock.
      if (deadline.expire !== null && deadline.at > now) break;
      this.head++;
      const { expire, target } = deadline;
      deadline.expire = null;
      deadline.target = undefined;
      expire?.(target);
    }
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else {
      if (this.head * 2 > this.entries.length) {
        this.entries = this.entries.slice(this.head);
        this.head = 0;
      }
      const next = this.entries[this.head] as SetupDeadline;
      if (this.timer === null) this.arm(next.at - now);
    }
  }
}
