// Bounds the client and handler errors a worker forwards to the main thread: a flood of failing
// handshakes must not flood the main thread's message queue. At most LIMIT per WINDOW_MS go
// through; the rest are counted and reported once per window.
export class EventThrottle {
  static readonly LIMIT = 50;
  static readonly WINDOW_MS = 1000;
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly report: (suppressed: number) => void) {
    this.timer = setInterval(() => this.flush(), EventThrottle.WINDOW_MS);
    this.timer.unref();
  }

  admit(): boolean {
    const now = Date.now();
    if (now - this.windowStart >= EventThrottle.WINDOW_MS) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow < EventThrottle.LIMIT) {
      this.inWindow++;
      return true;
    }
    this.suppressed++;
    return false;
  }

  private flush(): void {
    if (this.suppressed === 0) return;
    const count = this.suppressed;
    this.suppressed = 0;
    this.report(count);
  }

  stop(): void {
    this.flush();
    clearInterval(this.timer);
  }
}
