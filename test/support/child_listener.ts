// Runs a fixture (test/fixtures/*.ts, compiled) in a child process that speaks JSON lines,
// and follows what it reports: ChildListener for listener_child.ts, WorkerHost for
// worker_host.ts, GracefulCloseChild for graceful_close_child.ts, AdoptionChild for
// adoption_child.ts, BindingCallsChild for binding_calls_child.ts.
import { spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import readline from 'node:readline';
import { compiledFixture } from './paths.js';
import { DEFAULT_WAIT_MS, within } from './sockets.js';
import type { ChildCommand, ChildConfig, ChildEvent } from './child_protocol.js';
import type { HostCommand, HostEvent } from '../fixtures/worker_host.js';
import type { WorkerConfig } from '../fixtures/listener_worker.js';
import type { GracefulCloseEvent } from '../fixtures/graceful_close_child.js';
import type { AdoptionCommand, AdoptionConfig, AdoptionEvent } from '../fixtures/adoption_child.js';
import type { BindingCall, BindingCallEvent } from '../fixtures/binding_calls_child.js';

/**
 * Where an inherited descriptor should land in a Node.js child: at startup Node calls
 * uv_disable_stdio_inheritance(), which makes close-on-exec every descriptor from 0 up to the
 * first closed one above 15. A descriptor above that, with closed numbers below it, reaches
 * the child's own code still inheritable, as a socket-activated service would receive it.
 */
export const INHERITED_FD = 40;

export interface ChildStartOptions {
  /** Extra environment (merged over this process's). */
  env?: Record<string, string>;
  /** A command to run node under, e.g. ['prlimit', '--nofile=64:64', '--']. */
  wrapper?: string[];
  /** A descriptor of this process to hand to the child under the number `childFd` (>= 3). */
  inherit?: { fd: number; childFd: number };
}

interface Waiter<E> {
  test: (event: E) => boolean;
  resolve: (event: E) => void;
}

type Of<E extends { event: string }, K extends E['event']> = Extract<E, { event: K }>;

function spawnFixture(fixture: string, config: unknown, options: ChildStartOptions): ChildProcess {
  const argv = [compiledFixture(fixture), JSON.stringify(config)];
  const [command, ...prefix] = options.wrapper ?? [];
  const stdio: StdioOptions = ['pipe', 'pipe', 'pipe'];
  if (options.inherit) {
    // 'ignore' leaves the numbers in between closed in the child.
    while (stdio.length < options.inherit.childFd) stdio.push('ignore');
    stdio.push(options.inherit.fd);
  }
  const env = { ...process.env, ...options.env };
  return command !== undefined
    ? spawn(command, [...prefix, process.execPath, ...argv], { stdio, env })
    : spawn(process.execPath, argv, { stdio, env });
}

export class FixtureProcess<E extends { event: string }, C> {
  readonly events: E[] = [];
  stderr = '';
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;
  private readonly waiters = new Set<Waiter<E>>();
  private readonly exitListeners = new Set<() => void>();

  protected constructor(readonly child: ChildProcess) {
    const stdout = child.stdout;
    if (!stdout) throw new Error('the child has no stdout pipe');
    readline.createInterface({ input: stdout }).on('line', (line) => this.receive(line));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    // A child that dies leaves its stdin pipe broken; writing then must not throw here.
    child.stdin?.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        for (const listener of this.exitListeners) listener();
        resolve();
      });
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('the child did not start');
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  private receive(line: string): void {
    let event: E;
    try {
      event = JSON.parse(line) as E;
    } catch {
      this.stderr += `[unparsed stdout] ${line}\n`;
      return;
    }
    this.events.push(event);
    for (const waiter of [...this.waiters]) {
      if (waiter.test(event)) {
        this.waiters.delete(waiter);
        waiter.resolve(event);
      }
    }
  }

  /** Events of one kind received so far. */
  all<K extends E['event']>(kind: K): Array<Of<E, K>> {
    return this.events.filter((event): event is Of<E, K> => event.event === kind);
  }

  /**
   * The first event of `kind` (matching `predicate`) at or after index `since` of `events`,
   * waiting for it if it has not come yet. Rejects when the child exits or time runs out.
   */
  waitFor<K extends E['event']>(
    kind: K,
    predicate: (event: Of<E, K>) => boolean = () => true,
    { since = 0, timeoutMs = DEFAULT_WAIT_MS }: { since?: number; timeoutMs?: number } = {},
  ): Promise<Of<E, K>> {
    const test = (event: E): event is Of<E, K> => event.event === kind && predicate(event as Of<E, K>);
    const found = this.events.slice(since).find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => {
        this.waiters.delete(waiter);
        this.exitListeners.delete(onExit);
        clearTimeout(timer);
        reject(new Error(`${why} waiting for '${kind}' from the child\n${this.transcript()}`));
      };
      const onExit = (): void => fail(`the child exited (code ${this.exitCode}, signal ${this.exitSignal})`);
      const waiter: Waiter<E> = {
        test,
        resolve: (event) => {
          this.exitListeners.delete(onExit);
          clearTimeout(timer);
          resolve(event as Of<E, K>);
        },
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      this.waiters.add(waiter);
      if (this.running) this.exitListeners.add(onExit);
      else onExit();
    });
  }

  send(command: C): void {
    this.child.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  /** Sends a command and waits for the event that answers it. */
  request<K extends E['event']>(command: C, answer: K, timeoutMs = DEFAULT_WAIT_MS): Promise<Of<E, K>> {
    const since = this.events.length;
    this.send(command);
    return this.waitFor(answer, () => true, { since, timeoutMs });
  }

  /** What the child said so far, for failure messages. */
  transcript(): string {
    const events = this.events.map((event) => JSON.stringify(event)).slice(-30);
    return `events (last ${events.length}):\n  ${events.join('\n  ')}\nstderr:\n${this.stderr.slice(-4000)}`;
  }

  /** Ends the child: closes its stdin (it exits by itself), then kills it if it lingers. */
  async stop(timeoutMs = 3000): Promise<void> {
    if (!this.running) return;
    this.child.stdin?.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** test/fixtures/listener_child.ts: a listener in its own process. */
export class ChildListener extends FixtureProcess<ChildEvent, ChildCommand> {
  static start(config: ChildConfig, options: ChildStartOptions = {}): ChildListener {
    return new ChildListener(spawnFixture('listener_child', config, options));
  }
}

/** test/fixtures/worker_host.ts: a process whose worker thread runs a listener. */
export class WorkerHost extends FixtureProcess<HostEvent, HostCommand> {
  static start(config: WorkerConfig, options: ChildStartOptions = {}): WorkerHost {
    return new WorkerHost(spawnFixture('worker_host', config, options));
  }
}

/** test/fixtures/graceful_close_child.ts: a process that ends by awaiting a graceful close(). */
export class GracefulCloseChild extends FixtureProcess<GracefulCloseEvent, never> {
  static start(config: { backend: 'native' | 'js'; mode: 'finished' | 'running' }): GracefulCloseChild {
    return new GracefulCloseChild(spawnFixture('graceful_close_child', config, {}));
  }
}

/** test/fixtures/adoption_child.ts: listeners adopting a descriptor they may not be able to take. */
export class AdoptionChild extends FixtureProcess<AdoptionEvent, AdoptionCommand> {
  static start(config: AdoptionConfig, options: ChildStartOptions = {}): AdoptionChild {
    return new AdoptionChild(spawnFixture('adoption_child', config, options));
  }

  /** Closes the child's stdin and waits (bounded) for it to exit by itself; never kills it. */
  async exitsByItself(timeoutMs = DEFAULT_WAIT_MS): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.stdin?.end();
    await within(this.exited, `the child to exit by itself\n${this.transcript()}`, timeoutMs);
    return { code: this.exitCode, signal: this.exitSignal };
  }
}

/** test/fixtures/binding_calls_child.ts: direct calls into the addon, each reported before it is made. */
export class BindingCallsChild extends FixtureProcess<BindingCallEvent, never> {
  static start(calls: BindingCall[]): BindingCallsChild {
    return new BindingCallsChild(spawnFixture('binding_calls_child', calls, {}));
  }
}
