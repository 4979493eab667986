// The `native-tls-listener` command run as a child process, directly or under another program
// (systemd-socket-activate, unshare), for the suites that drive the CLI from outside (several
// at once for upgrades): its output so far, how it ended, and bounded waits on both.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ListenerStats } from '../../src/index.js';
import type { Cleanup } from './waiting.js';
import { waitUntil, within } from './waiting.js';
import { repoRoot } from './paths.js';

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

  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      }),
    );
  }

  /** Waits for the whole banner and returns the port; fails with the output if the process ends first. */
  async started(): Promise<number> {
    await waitUntil(() => this.stdout.includes('stop with') || this.exit !== null, 'the CLI banner', CLI_WAIT_MS);
    const port = /^listening on \S+:(\d+) /m.exec(this.stdout)?.[1];
    if (this.exit !== null || port === undefined) throw new Error(`the CLI did not start (exit ${JSON.stringify(this.exit)}):\n${this.describe()}`);
    return Number(port);
  }

  /** Waits until stderr has `count` lines matching `pattern`. */
  async logged(pattern: RegExp, count = 1): Promise<void> {
    const matches = (): number => this.stderr.split('\n').filter((line) => pattern.test(line)).length;
    await waitUntil(() => matches() >= count || this.exit !== null, `${count} stderr line(s) matching ${String(pattern)}`, CLI_WAIT_MS);
    if (matches() < count) throw new Error(`the CLI exited before logging ${String(pattern)}:\n${this.describe()}`);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<CliExit> {
    if (this.exit === null) this.child.kill(signal);
    return within(this.exited, `the CLI to exit after ${signal}`, CLI_WAIT_MS);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('the CLI did not spawn');
    return this.child.pid;
  }

  /** Waits until stderr contains `text`; fails with the output if the process ends first. */
  async waitForLog(text: string): Promise<void> {
    await waitUntil(() => this.stderr.includes(text) || this.exit !== null, `"${text}" on the CLI's stderr`, CLI_WAIT_MS);
    if (!this.stderr.includes(text)) throw new Error(`the CLI ended without "${text}":\n${this.describe()}`);
  }

  ended(what = 'the CLI to exit'): Promise<CliExit> {
    return within(this.exited, what, CLI_WAIT_MS);
  }

  /** The statistics of the `final stats:` line it printed when it stopped. */
  finalStats(): ListenerStats {
    const match = /^final stats: (.*)$/m.exec(this.stdout);
    if (!match?.[1]) throw new Error(`no final stats line in:\n${this.describe()}`);
    return JSON.parse(match[1]) as ListenerStats;
  }

  describe(): string {
    return `stdout:\n${this.stdout}\nstderr:\n${this.stderr}`;
  }
}

/**
 * Spawns `node <cli> ...args`, or `command ...prefix node <cli> ...args` to run it under
 * another program; killed at cleanup if still running.
 */
export function spawnCliProcess(
  cleanup: Cleanup,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; under?: readonly string[] } = {},
): CliProcess {
  const argv = [...(options.under ?? []), process.execPath, CLI_PATH, ...args];
  const [command, ...rest] = argv;
  if (command === undefined) throw new Error('no command');
  const cli = new CliProcess(spawn(command, rest, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  cleanup.add(async () => {
    if (cli.exit === null) cli.child.kill('SIGKILL');
    await within(cli.exited, 'the CLI to exit after SIGKILL', CLI_WAIT_MS);
  });
  return cli;
}

/** A fresh --state-dir, removed at cleanup, so no test touches the user's own. */
export function stateDirFor(cleanup: Cleanup): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-cli-state-'));
  cleanup.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
