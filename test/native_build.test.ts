// How the addon is compiled: C++ exceptions of every kind reach JS as errors (node-addon-api's
// node_addon_api_except_all), only the Node-API entry points are exported
// (-fvisibility=hidden), and warnings are errors in CI's builds only, never in the build a
// user's install runs.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { repoRoot } from './support/paths.js';
import { run, useCleanup } from './support/tls_harness.js';

const execFileAsync = promisify(execFile);

/** Every build of the addon present in the tree (node-gyp's, and cmake-js's after `npm run build:cmake`). */
const builtAddons = [
  path.join(repoRoot, 'build', 'Release', 'native_acceptor.node'),
  path.join(repoRoot, 'build-cmake', 'Release', 'native_acceptor.node'),
].filter((file) => fs.existsSync(file));

function hasTool(name: string): boolean {
  try {
    execFileSync(name, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('a C++ exception thrown inside the addon', function () {
  const cleanup = useCleanup();

  before(function () {
    if (builtAddons.length === 0) this.skip();
  });

  for (const addon of builtAddons) {
    it(`reaches JS as an Error instead of terminating the process (${path.relative(repoRoot, addon)})`, async function () {
      // A batch limit of 2^62 once reached the acceptor's reserve(), whose std::length_error
      // left a C callback and aborted the process. The addon now range-checks every number
      // itself (native/arguments.cc), so no argument reaches a std::exception any more; this
      // proves the value comes back as a JS error and the process lives. node-addon-api's
      // except_all defines stay as the second line (checked in the build flags below).
      const child = `
        import { createRequire } from 'node:module';
        const binding = createRequire(import.meta.url)(${JSON.stringify(addon)});
        const listening = binding.openListenSocket(4, '127.0.0.1', 0, 16);
        try {
          new binding.Acceptor(listening.fd, () => {}, () => {}, { batchLimit: 2 ** 62 });
          console.log(JSON.stringify({ thrown: null }));
        } catch (error) {
          console.log(JSON.stringify({ thrown: { isError: error instanceof Error, code: error.code } }));
        }
      `;
      const result = await run(cleanup, process.execPath, ['--input-type=module', '-e', child], { closeStdin: true, timeoutMs: 10_000 });
      expect(result.signal, result.stderr).to.equal(null);
      expect(result.code, result.stderr).to.equal(0);
      const outcome = JSON.parse(result.stdout.trim()) as { thrown: { isError: boolean; code: string } | null };
      expect(outcome.thrown).to.deep.equal({ isError: true, code: 'ERR_INVALID_OPTION' });
    });
  }
});

describe("the addon's exported symbols", function () {
  before(function () {
    if (process.platform !== 'linux' || builtAddons.length === 0 || !hasTool('nm')) this.skip();
  });

  for (const addon of builtAddons) {
    it(`are the Node-API module entry points, besides the C++ standard library's (${path.relative(repoRoot, addon)})`, function () {
      const exported = execFileSync('nm', ['-D', '--defined-only', addon], { encoding: 'utf8' })
        .split('\n')
        .map((line) => line.trim().split(/\s+/).at(-1) ?? '')
        .filter((name) => name.length > 0);
      // libstdc++ declares namespace std visible whatever -fvisibility says, so its template
      // instances, the statics inside its inline functions (_ZZ..., e.g. std::to_chars's digit
      // table) and std::exception's typeinfo (which catching across libraries needs) stay.
      const standardLibrary = /^_ZZ?(N|NK|T[ISV])?St/;
      const entryPoints = /^(napi_register_module_v1|node_api_module_get_api_version_v1)$/;
      expect(exported.filter((name) => !entryPoints.test(name) && !standardLibrary.test(name))).to.deep.equal([]);
      expect(exported).to.include('napi_register_module_v1');
    });
  }
});

describe('the build flags of binding.gyp', function () {
  this.timeout(60_000);
  let scratch: string;

  /**
   * Runs `node-gyp configure` on the build files laid out as a user's install has them: the
   * package in node_modules/, node-addon-api hoisted beside it. Returns the generated target
   * makefile and what the package directory holds afterwards.
   */
  async function configure(env: NodeJS.ProcessEnv): Promise<{ makefile: string; packageEntries: string[] }> {
    const consumer = fs.mkdtempSync(path.join(scratch, 'consumer-'));
    const dir = path.join(consumer, 'node_modules', 'native-tls-listener');
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(path.join(repoRoot, 'binding.gyp'), path.join(dir, 'binding.gyp'));
    fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(dir, 'package.json'));
    fs.cpSync(path.join(repoRoot, 'node_modules', 'node-addon-api'), path.join(consumer, 'node_modules', 'node-addon-api'), { recursive: true });
    const nodeGyp = path.join(repoRoot, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    const args = [nodeGyp, 'configure', '--loglevel=error'];
    // The running Node's own headers, as npm's `nodedir` gives them, so nothing is downloaded.
    const nodedir = process.env.npm_config_nodedir ?? path.dirname(path.dirname(process.execPath));
    if (fs.existsSync(path.join(nodedir, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${nodedir}`);
    await execFileAsync(process.execPath, args, { cwd: dir, env: { ...process.env, ...env }, timeout: 50_000 });
    return {
      makefile: fs.readFileSync(path.join(dir, 'build', 'native_acceptor.target.mk'), 'utf8'),
      packageEntries: fs.readdirSync(dir).sort(),
    };
  }

  /** The Release flags of one kind in a gyp makefile ('CFLAGS_CC', 'CFLAGS', 'DEFS'). */
  function releaseFlags(makefile: string, kind: string): string[] {
    const block = new RegExp(`^${kind}_Release :=((?:.*\\\\\\n)*.*)$`, 'm').exec(makefile)?.[1] ?? '';
    return block
      .replace(/\\\n/g, ' ')
      .split(/\s+/)
      .filter((flag) => flag.length > 0)
      .map((flag) => flag.replace(/^'|'$/g, ''));
  }

  before(function () {
    if (process.platform !== 'linux' || !hasTool('python3')) this.skip();
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-gyp-'));
  });

  after(function () {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it("make warnings errors only when NATIVE_TLS_LISTENER_WERROR=1 (CI), never in a user's install", async function () {
    const user = (await configure({ NATIVE_TLS_LISTENER_WERROR: '' })).makefile;
    expect([...releaseFlags(user, 'CFLAGS'), ...releaseFlags(user, 'CFLAGS_CC')]).to.not.include('-Werror');
    expect(releaseFlags(user, 'CFLAGS_CC')).to.include.members(['-Wall', '-Wextra']);
    const ci = (await configure({ NATIVE_TLS_LISTENER_WERROR: '1' })).makefile;
    expect([...releaseFlags(ci, 'CFLAGS'), ...releaseFlags(ci, 'CFLAGS_CC')]).to.include('-Werror');
  });

  it('enable C++ exceptions the node-addon-api way and hide symbols', async function () {
    const { makefile } = await configure({ NATIVE_TLS_LISTENER_WERROR: '' });
    expect(releaseFlags(makefile, 'DEFS')).to.include.members(['-DNAPI_CPP_EXCEPTIONS', '-DNODE_ADDON_API_CPP_EXCEPTIONS_ALL', '-DNAPI_VERSION=9']);
    expect([...releaseFlags(makefile, 'CFLAGS'), ...releaseFlags(makefile, 'CFLAGS_CC')]).to.not.include('-fno-exceptions');
    expect(releaseFlags(makefile, 'CFLAGS')).to.include('-fvisibility=hidden');
  });

  it("write nothing into the installed package outside build/ (node-addon-api hoisted beside it)", async function () {
    const { packageEntries } = await configure({ NATIVE_TLS_LISTENER_WERROR: '' });
    expect(packageEntries).to.deep.equal(['binding.gyp', 'build', 'package.json']);
  });
});

describe('the two build files (binding.gyp for node-gyp, CMakeLists.txt for cmake-js)', function () {
  /** The native/*.cc files a build file names. */
  function sourcesOf(file: string): string[] {
    const text = fs.readFileSync(path.join(repoRoot, file), 'utf8');
    return [...new Set(text.match(/native\/[A-Za-z0-9_]+\.cc/g) ?? [])].sort();
  }

  it('compile the same sources, and every native/*.cc of the addon is in them', function () {
    const gyp = sourcesOf('binding.gyp');
    // A file one build lacks links anyway (a shared object may leave symbols undefined) and
    // fails only when the first call reaches it: the sanitizer build once did, at its first
    // per-address limit.
    expect(sourcesOf('CMakeLists.txt')).to.deep.equal(gyp);
    const onDisk = fs
      .readdirSync(path.join(repoRoot, 'native'))
      .filter((name) => name.endsWith('.cc'))
      .map((name) => `native/${name}`)
      .sort();
    expect(gyp).to.deep.equal(onDisk);
  });

  for (const addon of builtAddons) {
    it(`leave no symbol of the addon's own undefined (${path.relative(repoRoot, addon)}, loaded with every symbol bound at once)`, function () {
      const script = `require(${JSON.stringify(addon)})`;
      // LD_BIND_NOW makes dlopen resolve every symbol at load, as RTLD_NOW does.
      execFileSync(process.execPath, ['-e', script], { env: { ...process.env, LD_BIND_NOW: '1' }, stdio: 'pipe' });
    });
  }
});
