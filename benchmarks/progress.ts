// The run's progress on stderr: one line per step with an estimate of the time left (redrawn
// in place on a terminal, one line each in a log).

export class Progress {
  private done = 0;
  private estimatedDone = 0;
  private readonly started = Date.now();
  private readonly tty = process.stderr.isTTY === true;
  private lastLine = '';
  /** ms spent waiting for a quiet machine: not part of the rate the ETA extrapolates */
  waitedMs = 0;

  constructor(
    private readonly total: number,
    private readonly estimatedTotal: number,
  ) {}

  private eta(): string {
    const elapsed = (Date.now() - this.started - this.waitedMs) / 1000;
    if (this.estimatedDone <= 0) return `~${formatDuration(this.estimatedTotal)} left`;
    const left = (this.estimatedTotal - this.estimatedDone) * (elapsed / this.estimatedDone);
    return `~${formatDuration(left)} left`;
  }

  show(text: string): void {
    const line = `[${this.done + 1}/${this.total} ${formatDuration((Date.now() - this.started) / 1000)} ${this.eta()}] ${text}`;
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns || 120) - 1)}`);
    } else if (text !== this.lastLine) {
      process.stderr.write(`${line}\n`); // a log, not a terminal: each step once
    }
    this.lastLine = text;
  }

  trialDone(estimate: number): void {
    this.done++;
    this.estimatedDone += estimate;
  }

  note(text: string): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
    process.stderr.write(`${text}\n`);
  }

  finish(): void {
    if (this.tty) process.stderr.write('\r\x1b[2K');
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
