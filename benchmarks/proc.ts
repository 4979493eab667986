// A child process that talks in JSON lines on stdout: the trial servers and the load
// generator. Lines are queued as they come; next() waits for the next one, with a timeout.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

export type Message = Record<string, unknown>;

export class LineChannel {
  readonly child: ChildProcess;
  private readonly queue: Message[] = [];
  private waiter: ((message: Message | null) => void) | null = null;
  private buffer = '';
  private stderrText = '';
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exited: Promise<void>;

  constructor(command: string, args: readonly string[], readonly label: string, env?: NodeJS.ProcessEnv) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (chunk: string) => this.onData(chunk));
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      if (this.stderrText.length < 8000) this.stderrText += chunk;
    });
    this.child.stdin?.on('error', () => {}); // a child that exited early: reported by next()
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        this.exitInfo = { code, signal };
        this.deliver(null);
        resolve();
      });
      this.child.once('error', (error) => {
        this.stderrText += `\nspawn failed: ${error.message}`;
        this.exitInfo = { code: null, signal: null };
        this.deliver(null);
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get stderr(): string {
    return this.stderrText.trim();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line === '') continue;
      let message: Message;
      try {
        const parsed: unknown = JSON.parse(line);
        message = typeof parsed === 'object' && parsed !== null ? (parsed as Message) : { type: 'text', text: line };
      } catch {
        message = { type: 'text', text: line };
      }
      this.deliver(message);
    }
  }

  private deliver(message: Message | null): void {
    if (message) {
      if (this.waiter) {
        const waiter = this.waiter;
        this.waiter = null;
        waiter(message);
      } else {
        this.queue.push(message);
      }
    } else if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter(null);
    }
  }

  private describeExit(): string {
    const info = this.exitInfo;
    const how = info ? (info.signal ? `signal ${info.signal}` : `code ${String(info.code)}`) : 'no answer';
    return `${this.label} ended (${how})${this.stderr ? `: ${this.stderr.slice(-1500)}` : ''}`;
  }

  /** The next JSON line; rejects on timeout or when the process has ended. */
  next(timeoutMs: number): Promise<Message> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.exitInfo) return Promise.reject(new Error(this.describeExit()));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`${this.label}: no answer within ${timeoutMs} ms${this.stderr ? `: ${this.stderr.slice(-1500)}` : ''}`));
      }, timeoutMs);
      this.waiter = (message) => {
        clearTimeout(timer);
        if (message) resolve(message);
        else reject(new Error(this.describeExit()));
      };
    });
  }

  /** The next line whose `type` (or `event`) is `type`; fatal/error lines reject. */
  async expect(type: string, timeoutMs: number): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = await this.next(Math.max(1, deadline - Date.now()));
      if (message.type === type || message.event === type) return message;
      if (message.type === 'fatal' || message.type === 'error') throw new Error(`${this.label}: ${String(message.message)}`);
    }
  }

  send(line: string): void {
    if (this.child.stdin && !this.child.stdin.destroyed) this.child.stdin.write(`${line}\n`);
  }

  endInput(): void {
    this.child.stdin?.end();
  }

  /** Waits for the process to end; SIGKILL after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.exitInfo) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  async wait(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    await this.exited;
    return this.exitInfo ?? { code: null, signal: null };
  }
}
