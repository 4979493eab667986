// The package loads by name from ES modules and from CommonJS: require() of an ES module
// (Node 20.19+, 22.12+) needs an export condition that lets require in, and a module graph
// without top-level await. Run in the package's own directory, `native-tls-listener` is a
// self-reference resolved through the exports map as published; test/packed_install.test.ts
// does the same from an installed tarball.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { repoRoot } from './support/paths.js';

const execFileAsync = promisify(execFile);

const NAMES = ['createListener', 'createLocalTCPListener', 'nativeAvailable', 'ErrorCodes', 'TLSListener', 'Listener'];
const DESCRIBE = `console.log(JSON.stringify(Object.fromEntries(${JSON.stringify(NAMES)}.map((name) => [name, typeof m[name]]))))`;

async function exportsSeenBy(args: string[]): Promise<Record<string, string>> {
  const { stdout } = await execFileAsync(process.execPath, args, { cwd: repoRoot, timeout: 15_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, string>;
}

describe('loading the package by name', function () {
  this.timeout(30_000);

  it('works with import from an ES module', async function () {
    const seen = await exportsSeenBy(['--input-type=module', '-e', `const m = await import('native-tls-listener'); ${DESCRIBE}`]);
    expect(seen).to.deep.equal(Object.fromEntries(NAMES.map((name) => [name, name === 'ErrorCodes' ? 'object' : 'function'])));
  });

  it('works with require() from CommonJS, giving the same exports', async function () {
    const seen = await exportsSeenBy(['--input-type=commonjs', '-e', `const m = require('native-tls-listener'); ${DESCRIBE}`]);
    expect(seen).to.deep.equal(Object.fromEntries(NAMES.map((name) => [name, name === 'ErrorCodes' ? 'object' : 'function'])));
  });
});
