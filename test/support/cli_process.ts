// A long-running `native-tls-listener` process for the suites that need several at once (the
// upgrade suite): its output so far, how it ended, and bounded waits on both.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { ListenerStats } from '../../src/index.js';
import { repoRoot } from './paths.js';
import { waitUntil, within } from './waiting.js';

export const CLI_PATH = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
export const CLI_WAIT_MS = 15_000;

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class CliProcess {
  stdout = '';
  stderr = '';
  exit: CliExit | null = null;
  readonly exited: Promise<CliExit>;
  readonly child: ChildProcess;

  constructor(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [CLI_PATH, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('the CLI did not spawn');
    return this.child.pid;
  }

  /** Waits for the whole banner; the port it listens on. Fails with the output if it ends first. */
  async started(): Promise<number> {
    await waitUntil(() => this.stdout.includes('stop with') || this.exit !== null, 'the CLI banner', CLI_WAIT_MS);
    const match = /^listening on 127\.0\.0\.1:(\d+) /m.exec(this.stdout);
    if (this.exit !== null || !match?.[1]) throw new Error(`the CLI did not start (exit ${JSON.stringify(this.exit)}):\n${this.stdout}\n${this.stderr}`);
    return Number(match[1]);
  }

  async waitForLog(text: string): Promise<void> {
    await waitUntil(() => this.stderr.includes(text) || this.exit !== null, `"${text}" on the CLI's stderr`, CLI_WAIT_MS);
    if (!this.stderr.includes(text)) throw new Error(`the CLI ended without "${text}":\n${this.stderr}`);
  }

  ended(what = 'the CLI to exit'): Promise<CliExit> {
    return within(this.exited, what, CLI_WAIT_MS);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<CliExit> {
    if (this.exit === null) this.child.kill(signal);
    return this.ended(`the CLI to exit after ${signal}`);
  }

  finalStats(): ListenerStats {
    const match = /^final stats: (.*)$/m.exec(this.stdout);
    if (!match?.[1]) throw new Error(`no final stats line in:\n${this.stdout}\n${this.stderr}`);
    return JSON.parse(match[1]) as ListenerStats;
  }
}
