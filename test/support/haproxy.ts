// A real HAProxy (Debian's `haproxy` package) on loopback, started in the foreground from a
// generated configuration and killed at cleanup; every wait is bounded.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_WAIT_MS, within } from './waiting.js';
import type { Cleanup } from './waiting.js';

export function haproxyAvailable(): boolean {
  return spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status === 0;
}

/** A port free on 127.0.0.1 now (bound and released), for HAProxy's frontends. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface RunningHaproxy {
  readonly process: ChildProcess;
  readonly dir: string;
  output(): string;
}

/**
 * Writes `config` (plus `files`, by name, into the same temporary directory, which `config`
 * may name as {dir}) and runs `haproxy -db -f` on it until it accepts on `readyPort`: a
 * frontend of the config that rejects every connection, so that probing it sends nothing
 * to the listener under test (HAProxy binds every frontend before it accepts on any).
 */
export async function startHaproxy(cleanup: Cleanup, config: string, readyPort: number, files: Record<string, string> = {}): Promise<RunningHaproxy> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ntl-haproxy-'));
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content, { mode: 0o600 });
  const configPath = path.join(dir, 'haproxy.cfg');
  await writeFile(configPath, config.replaceAll('{dir}', dir));
  const child = spawn('haproxy', ['-db', '-f', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit');
  cleanup.add(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await within(exited, 'haproxy to exit');
    }
  });
  for (const port of [readyPort]) {
    const deadline = Date.now() + DEFAULT_WAIT_MS;
    while (!(await accepts(port))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`haproxy is not accepting on ${port}: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  return { process: child, dir, output: () => output };
}
