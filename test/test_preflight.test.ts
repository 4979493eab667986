// `npm test` on a machine without a program the suite drives stops before the suite, naming
// each missing program and the one apt-get command that installs them (scripts/test-preflight.mjs).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { repoRoot } from './support/paths.js';

const execFileAsync = promisify(execFile);
const PREFLIGHT = path.join(repoRoot, 'scripts', 'test-preflight.mjs');

/** A PATH directory holding links to the given programs only. */
function pathWith(programs: readonly string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-preflight-'));
  for (const dir2 of (process.env.PATH ?? '').split(':')) {
    for (const program of programs) {
      const from = path.join(dir2, program);
      if (fs.existsSync(from) && !fs.existsSync(path.join(dir, program))) fs.symlinkSync(from, path.join(dir, program));
    }
  }
  return dir;
}

async function preflight(PATH: string): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await execFileAsync(process.execPath, [PREFLIGHT], { env: { PATH } });
    return { code: 0, stderr };
  } catch (error) {
    const failed = error as { code: number; stderr: string };
    return { code: failed.code, stderr: failed.stderr };
  }
}

describe('test preflight: the programs the suite needs', function () {
  const made: string[] = [];
  after(() => {
    for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('npm test runs it before the suite', function () {
    const scripts = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.pretest).to.match(/^node scripts\/test-preflight\.mjs && /);
  });

  it('passes on this machine, where the suite runs', async function () {
    const result = await preflight(process.env.PATH ?? '');
    expect(result.code, result.stderr).to.equal(0);
  });

  it('fails naming every missing program and one apt-get command with their Debian packages', async function () {
    const dir = pathWith(['openssl', 'curl', 'cc', 'prlimit', 'setpriv', 'unshare', 'strace']);
    made.push(dir);
    const result = await preflight(dir);
    expect(result.code).to.equal(1);
    for (const name of ['haproxy', 'systemd-socket-activate', 'socat']) expect(result.stderr).to.include(`  ${name} (Debian package `);
    expect(result.stderr).to.not.include('  openssl (');
    expect(result.stderr).to.include('apt-get install -y haproxy systemd socat');
  });
});
