// What a trial runs on: the server under test and the load generator as child processes
// (started, asked, stopped), and the machine's CPU around them (how busy the rest of the
// machine was, and waiting for it to be quiet before a trial).
import fs from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Binaries } from './build.js';
import type { CertSet } from './certs.js';
import { LineChannel } from './proc.js';
import type { Message } from './proc.js';
import type { ContenderId, ScenarioDef, TrialResult } from './model.js';
import type { Options, Timings } from './options.js';
import { serverScript } from './paths.js';
import type { Progress } from './progress.js';

export interface Context {
  quiet: { leftMs: number; waitedMs: number; loadedStarts: number };
  options: Options;
  timings: Timings;
  bins: Binaries;
  certs: CertSet;
  nodeBin: string;
  progress: Progress;
}

export interface ServerHandle {
  channel: LineChannel;
  port: number;
  /** whether the listener took maxPendingHandshakes (null: not asked for, or not a Node server) */
  admission: boolean | null;
}

/** Busy and steal CPU seconds of the whole machine so far (/proc/stat, USER_HZ = 100). */
export function machineCpu(): { busy: number; steal: number } | null {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const at = (i: number): number => f[i] ?? 0;
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    return { busy: (at(0) + at(1) + at(2) + at(5) + at(6)) / 100, steal: at(7) / 100 };
  } catch {
    return null;
  }
}

/** CPU the rest of the machine used in a window: everything but the server and the load generator. */
export function interference(before: ReturnType<typeof machineCpu>, serverCpuS: number, loadgen: Message, figures: TrialResult['figures'], warnings: string[]): void {
  const after = machineCpu();
  const elapsed = num(loadgen, 'elapsed_s');
  if (!before || !after || !(elapsed > 0)) return;
  const loadgenCpuS = num(loadgen, 'cpu_user_s') + num(loadgen, 'cpu_sys_s');
  figures.otherCpuCores = Math.max(0, (after.busy - before.busy - serverCpuS - loadgenCpuS) / elapsed);
  figures.stealCores = (after.steal - before.steal) / elapsed;
  if (figures.otherCpuCores > 0.15) warnings.push(`other processes used ${figures.otherCpuCores.toFixed(2)} cores during the window`);
}

/**
 * Waits (at most `budget.leftMs`, shared by the whole run) until the rest of the machine is
 * quiet: under 0.15 cores busy over 300 ms. Other people's test runs on a 2-core machine
 * would otherwise land inside a trial. Returns the seconds waited.
 */
export async function waitForQuiet(budget: { leftMs: number; waitedMs: number; loadedStarts: number }, progress: Progress, label: string): Promise<void> {
  for (;;) {
    const a = machineCpu();
    const t0 = Date.now();
    await sleep(300);
    const b = machineCpu();
    const spent = Date.now() - t0;
    if (!a || !b) return;
    const busy = (b.busy - a.busy) / (spent / 1000);
    if (busy < 0.15) return;
    if (budget.leftMs <= 0) {
      budget.loadedStarts++;
      return;
    }
    budget.leftMs -= spent;
    budget.waitedMs += spent;
    progress.waitedMs += spent;
    progress.show(`${label} | waiting for the machine to be quiet (other work is using the CPU)`);
    if (process.stderr.isTTY === true) progress.show(`${label} | waiting for the machine to be quiet (${busy.toFixed(2)} cores busy elsewhere)`);
  }
}

export function num(message: Message | undefined, key: string): number {
  const value = message?.[key];
  return typeof value === 'number' ? value : Number.NaN;
}

/**
 * A command the server runs under, and how long it may take to say 'ready' there (the
 * instruction count runs Node inside valgrind, tens of times slower).
 */
export interface Launcher {
  command: string;
  args: string[];
  readyTimeoutMs: number;
}

export async function startServer(ctx: Context, scenario: ScenarioDef, contender: ContenderId, handler: 'end' | 'hold', launcher?: Launcher): Promise<ServerHandle> {
  const cert = scenario.cert ? ctx.certs.files[scenario.cert] : undefined;
  let command: string;
  let args: string[];
  if (contender === 'c') {
    command = ctx.bins.trivialServer;
    args = [...(cert ? ['--tls', cert.cert, cert.key] : []), ...(handler === 'hold' ? ['--hold'] : []), ...(ctx.options.pin ? ['--cpu', '1'] : [])];
  } else {
    const nodeArgs = [...(scenario.kind === 'memory' ? ['--expose-gc'] : []), serverScript, '--contender', contender, '--transport', scenario.transport, '--handler', handler];
    if (cert) nodeArgs.push('--cert', cert.cert, '--key', cert.key);
    if (scenario.alpn === true) nodeArgs.push('--alpn', 'h2,http/1.1');
    if (scenario.proxy === true) nodeArgs.push('--proxy', 'v2');
    // Admission control is this package's; bare Node runs as it is.
    if (scenario.maxPendingHandshakes !== undefined && contender !== 'node') nodeArgs.push('--max-pending-handshakes', String(scenario.maxPendingHandshakes));
    if (scenario.maxQueuedConnections !== undefined && contender !== 'node') nodeArgs.push('--max-queued-connections', String(scenario.maxQueuedConnections));
    if (scenario.deferAccept !== undefined && contender !== 'node') nodeArgs.push('--defer-accept', String(scenario.deferAccept));
    if (ctx.options.pin) {
      command = 'taskset';
      args = ['-c', '1', ctx.nodeBin, ...nodeArgs];
    } else {
      command = ctx.nodeBin;
      args = nodeArgs;
    }
  }
  if (launcher !== undefined) {
    args = [...launcher.args, command, ...args];
    command = launcher.command;
  }
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const channel = new LineChannel(command, args, `${contender} server`, env);
  raisePriority(ctx, channel);
  try {
    const ready = await channel.expect('ready', launcher?.readyTimeoutMs ?? 20_000);
    const port = num(ready, 'port');
    if (!Number.isInteger(port) || port <= 0) throw new Error(`${contender} server sent no port`);
    return { channel, port, admission: typeof ready.admission === 'boolean' ? ready.admission : null };
  } catch (error) {
    await stopServer({ channel, port: 0, admission: null });
    throw error;
  }
}

export async function stopServer(server: ServerHandle): Promise<void> {
  server.channel.send('exit');
  server.channel.endInput();
  await server.channel.stop(3000);
}

export async function ask(server: ServerHandle, command: 'mark' | 'report' | 'gc', timeoutMs = 10_000): Promise<Message> {
  server.channel.send(command);
  return server.channel.expect(command, timeoutMs);
}

export function raisePriority(ctx: Context, channel: LineChannel): void {
  if (!ctx.options.nice || channel.pid === undefined) return;
  try {
    os.setPriority(channel.pid, -10);
  } catch {
    // not permitted (not root): the run goes on at normal priority
  }
}

export function loadgenArgs(ctx: Context, mode: string, port: number, extra: (string | number)[]): string[] {
  return [mode, '--port', String(port), ...extra.map(String), ...(ctx.options.pin ? ['--cpu', '0'] : [])];
}

export async function runLoadgen(ctx: Context, args: string[], timeoutMs: number): Promise<Message> {
  const channel = new LineChannel(ctx.bins.loadgen, args, 'loadgen');
  raisePriority(ctx, channel);
  channel.endInput();
  try {
    const result = await channel.next(timeoutMs);
    await channel.wait();
    return result;
  } catch (error) {
    channel.child.kill('SIGKILL');
    await channel.wait();
    throw error;
  }
}

export function certArgs(ctx: Context, scenario: ScenarioDef): string[] {
  // The clients' ALPN offer goes with the certificate check: every TLS load generator run has both.
  return [...(scenario.cert ? ['--cert', ctx.certs.files[scenario.cert].cert] : []), ...(scenario.alpn === true ? ['--alpn'] : []), ...(scenario.proxy === true ? ['--proxy-v2'] : [])];
}

/** The load generator's arguments every run of `scenario` takes: its concurrency, certificate, ALPN and PROXY. */
export function scenarioLoad(ctx: Context, scenario: ScenarioDef): Array<string | number> {
  return ['--concurrency', scenario.concurrency ?? ctx.timings.concurrency, ...certArgs(ctx, scenario)];
}

export function loadgenTrouble(result: Message, warnings: string[]): void {
  const completed = num(result, 'completed');
  const errors = num(result, 'errors');
  if (!(completed > 0)) throw new Error(`the load generator completed no connection: ${JSON.stringify(result.error_kinds ?? {})}`);
  if (errors > 0) warnings.push(`${errors} connection errors ${JSON.stringify(result.error_kinds ?? {})}`);
}
