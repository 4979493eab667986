// What a user gets from the package tarball, on a machine without a compiler: the packed
// package installs from the tarball into an empty project whose PATH has only node, npm and sh,
// compiles nothing, and serves on the native backend through its prebuild.
// scripts/check-packed-install.mjs does the work (CI runs it on Node 20 and 24 after a full
// `npm pack`); here it packs what is already built, with the Node running the tests.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { repoRoot } from './support/paths.js';

const execFileAsync = promisify(execFile);

interface LoaderOutcome {
  nativeAvailable?: boolean;
  backend?: string;
  reply?: string;
  error?: string;
}

interface PackedInstallSummary {
  prebuilds: string[];
  sourceMaps: number;
  consumers: Array<{ node: string; compiledAtInstall: boolean; buildDirectory: boolean; command: string; loaders: Record<string, LoaderOutcome> }>;
  problems: string[];
}

describe('the packed tarball installed without a compiler', function () {
  this.timeout(180_000);
  let summary: PackedInstallSummary;

  before(async function () {
    const script = path.join(repoRoot, 'scripts', 'check-packed-install.mjs');
    // The script's exit status is 1 when it found problems; the summary says which.
    const { stdout } = await execFileAsync(process.execPath, [script, '--reuse-build', '--json'], {
      cwd: repoRoot,
      timeout: 170_000,
      maxBuffer: 16 * 1024 * 1024,
    }).catch((error: { stdout?: string; stderr?: string }) => {
      if (error.stdout?.trim().startsWith('{')) return { stdout: error.stdout };
      throw error;
    });
    summary = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as PackedInstallSummary;
  });

  it('carries a prebuild for this platform', function () {
    expect(summary.prebuilds.some((file) => file.startsWith(`prebuilds/${process.platform}-${process.arch}/`))).to.equal(true);
  });

  it('installs without compiling anything', function () {
    expect(summary.consumers).to.have.length(1);
    expect(summary.consumers[0]?.node).to.equal(process.version);
    expect(summary.consumers[0]?.compiledAtInstall).to.equal(false);
    expect(summary.consumers[0]?.buildDirectory).to.equal(false);
  });

  it('serves on the native backend when imported (ESM)', function () {
    expect(summary.consumers[0]?.loaders.import).to.deep.equal({ nativeAvailable: true, backend: 'native', reply: 'served' });
  });

  it('serves on the native backend when required (CommonJS)', function () {
    expect(summary.consumers[0]?.loaders.require).to.deep.equal({ nativeAvailable: true, backend: 'native', reply: 'served' });
  });

  it('installs the command: `npx native-tls-listener --version` runs in the consumer project', function () {
    expect(summary.consumers[0]?.command).to.equal('runs');
  });

  it('ships the MIT licence, and every source its source maps name', function () {
    expect(summary.sourceMaps).to.be.greaterThan(0);
    expect(summary.problems.filter((problem) => /LICENSE|licence|source/.test(problem))).to.deep.equal([]);
  });

  it('finds nothing else wrong', function () {
    expect(summary.problems).to.deep.equal([]);
  });
});
