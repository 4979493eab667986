// Where the addon cannot load, the package still serves through the pure-JS backend with one
// clear warning, and asking for the native backend explicitly is an error naming every path
// tried; where the package has a prebuild and nothing built from source (an install from the
// tarball), the prebuild serves. The package is copied, without its build/ directory, into a
// temporary directory: the real loader, looking in the real places, finds only what is there.
// NATIVE_TLS_LISTENER_ADDON names the one file to load instead (the sanitizer run points it at
// build-sanitize/).
import { execFile, spawn } from 'node:child_process';
import type { StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { INHERITED_FD } from './support/child_listener.js';
import { repoRoot } from './support/paths.js';
import { Cleanup, closeServer, handleFd, unixServer, within } from './support/sockets.js';

const execFileAsync = promisify(execFile);

// Runs in the copied package: serves one client on the default backend, then tries 'native'.
const PROBE = `
import net from 'node:net';
import { createLocalTCPListener, nativeAvailable } from 'native-tls-listener';
const warnings = [];
process.on('warning', (warning) => warnings.push({ code: warning.code, message: warning.message }));
const listeners = [];
for (let i = 0; i < 2; i++) {
  const listener = createLocalTCPListener({ port: 0 }, (socket) => socket.end('served'));
  listeners.push(listener);
}
const { port } = await listeners[0].listen();
const reply = await new Promise((resolve, reject) => {
  let data = '';
  net.connect(port, '127.0.0.1').on('data', (chunk) => (data += chunk)).on('end', () => resolve(data)).on('error', reject);
});
let explicit = null;
try {
  createLocalTCPListener({ port: 0, backend: 'native' }, () => {});
} catch (error) {
  explicit = { code: error.code, message: error.message, tried: error.tried };
}
await Promise.all(listeners.map((listener) => listener.close()));
await new Promise((resolve) => setImmediate(resolve));
console.log(JSON.stringify({ nativeAvailable: nativeAvailable(), backends: listeners.map((l) => l.backend), reply, explicit, warnings }));
`;

// Runs in the copied package with a Unix-domain listening socket as INHERITED_FD: adopts it,
// reports how listen() ended, and then does nothing, so only a listener left running could
// keep the process alive.
const ADOPT_PROBE = `
import fs from 'node:fs';
import { TCPListener } from 'native-tls-listener';
const fd = Number(process.argv[2]);
const listener = new TCPListener({ port: 0, fd }, () => undefined);
let outcome;
try {
  await listener.listen();
  outcome = { listening: true };
} catch (error) {
  outcome = { code: error.code, errno: error.errno, syscall: error.syscall, message: error.message };
}
let adoptedOpen = true;
try {
  fs.fstatSync(fd);
} catch {
  adoptedOpen = false;
}
console.log(JSON.stringify({ backend: listener.backend, outcome, adoptedOpen }));
`;

/** This process's environment without the loader override, so each probe sets its own. */
function envWithoutOverride(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NATIVE_TLS_LISTENER_ADDON;
  return env;
}

interface ProbeResult {
  nativeAvailable: boolean;
  backends: string[];
  reply: string;
  explicit: { code: string; message: string; tried: string[] } | null;
  warnings: Array<{ code: string; message: string }>;
}

/**
 * A package named native-tls-listener (so the probe imports it by name, through its exports
 * map) with the compiled sources and dependencies, no build/ or build-cmake/, and the given
 * prebuilds/ files; runs the probe in it.
 */
async function probeCopiedPackage(packageDir: string, prebuilds: Record<string, string>): Promise<ProbeResult> {
  fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(packageDir, 'package.json'));
  fs.cpSync(path.join(repoRoot, 'dist', 'src'), path.join(packageDir, 'dist', 'src'), { recursive: true });
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(packageDir, 'node_modules'));
  for (const [relative, source] of Object.entries(prebuilds)) {
    fs.mkdirSync(path.dirname(path.join(packageDir, relative)), { recursive: true });
    fs.copyFileSync(source, path.join(packageDir, relative));
  }
  fs.writeFileSync(path.join(packageDir, 'probe.mjs'), PROBE);
  const { stdout } = await execFileAsync(process.execPath, ['probe.mjs'], {
    cwd: packageDir,
    env: envWithoutOverride(),
    timeout: 20_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as ProbeResult;
}

describe('without a loadable addon', function () {
  this.timeout(30_000);
  let packageDir: string;
  let result: ProbeResult;

  before(async function () {
    packageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-no-addon-'));
    result = await probeCopiedPackage(packageDir, {});
  });

  after(function () {
    if (packageDir) fs.rmSync(packageDir, { recursive: true, force: true });
  });

  it('reports the addon unavailable', function () {
    expect(result.nativeAvailable).to.equal(false);
  });

  it('serves through the pure-JS backend by default', function () {
    expect(result.backends).to.deep.equal(['js', 'js']);
    expect(result.reply).to.equal('served');
  });

  it('warns once, however many listeners are created', function () {
    const ours = result.warnings.filter((warning) => warning.code === 'NTL_NATIVE_UNAVAILABLE');
    expect(ours).to.have.length(1);
    expect(ours[0]?.message).to.match(/native acceptor is not available.*pure-JS backend/);
  });

  it("throws ERR_NATIVE_UNAVAILABLE naming every path tried when backend: 'native' is asked for", function () {
    expect(result.explicit).to.not.equal(null);
    expect(result.explicit?.code).to.equal('ERR_NATIVE_UNAVAILABLE');
    const tried = result.explicit?.tried ?? [];
    expect(tried).to.have.length.greaterThanOrEqual(4);
    for (const candidate of ['build/Release', 'build/Debug', 'build-cmake/Release']) {
      const full = path.join(packageDir, candidate, 'native_acceptor.node');
      expect(tried.some((line) => line.startsWith(full))).to.equal(true, `tried ${full}`);
      expect(result.explicit?.message).to.contain(full);
    }
    const prebuilds = path.join(packageDir, 'prebuilds', `${process.platform}-${process.arch}`);
    expect(tried.some((line) => line.startsWith(`${prebuilds}: no prebuild`))).to.equal(true, `tried ${prebuilds}`);
    expect(tried.some((line) => line.startsWith(`node-gyp-build in ${packageDir}: No native build was found`))).to.equal(true);
  });

  describe('adopting a Unix-domain listening socket', () => {
    const cleanup = new Cleanup();
    afterEach(() => cleanup.run());

    it('refuses it with EAFNOSUPPORT once net.Server has it listening, closes it with the server, and the process exits', async () => {
      // Without the addon nothing can read the family before net.Server listens on the
      // descriptor, and net.Server cannot hand it back: closing the server closes it.
      fs.writeFileSync(path.join(packageDir, 'adopt_probe.mjs'), ADOPT_PROBE);
      const { server } = await unixServer(cleanup);
      const stdio: StdioOptions = ['ignore', 'pipe', 'pipe'];
      while (stdio.length < INHERITED_FD) stdio.push('ignore');
      stdio.push(handleFd(server));
      const child = spawn(process.execPath, ['adopt_probe.mjs', String(INHERITED_FD)], { cwd: packageDir, stdio });
      cleanup.add(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
      await closeServer(server);
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once('close', (code, signal) => resolve({ code, signal })),
      );
      const exit = await within(exited, 'the probe to exit by itself', 15_000).catch((error: Error) => {
        throw new Error(`${error.message}\nstdout: ${stdout}\nstderr: ${stderr}`);
      });
      expect(exit, stderr).to.deep.equal({ code: 0, signal: null });
      const report = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
        backend: string;
        outcome: { code?: string; errno?: number; syscall?: string; message?: string };
        adoptedOpen: boolean;
      };
      expect(report.backend).to.equal('js');
      expect({ code: report.outcome.code, errno: report.outcome.errno, syscall: report.outcome.syscall }, report.outcome.message).to.deep.equal({
        code: 'EAFNOSUPPORT',
        errno: os.constants.errno.EAFNOSUPPORT,
        syscall: 'getsockname',
      });
      expect(report.outcome.message).to.contain(`fd ${INHERITED_FD} is a Unix-domain (AF_UNIX) socket`);
      expect(report.adoptedOpen, 'the adopted descriptor is closed with the server').to.equal(false);
    });
  });
});

describe('with a prebuild and no build from source', function () {
  this.timeout(30_000);
  const builtAddon = path.join(repoRoot, 'build', 'Release', 'native_acceptor.node');
  const platformDir = `prebuilds/${process.platform}-${process.arch}`;
  let packageDir: string;

  before(function () {
    if (process.platform !== 'linux' || !fs.existsSync(builtAddon)) this.skip();
    packageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-prebuild-'));
  });

  after(function () {
    if (packageDir) fs.rmSync(packageDir, { recursive: true, force: true });
  });

  it('loads the prebuild for this platform and serves on the native backend', async function () {
    // The name prebuildify gives it (scripts/prebuild.mjs): package name, libc tag.
    const result = await probeCopiedPackage(packageDir, { [`${platformDir}/native-tls-listener.glibc.node`]: builtAddon });
    expect(result.nativeAvailable).to.equal(true);
    expect(result.backends).to.deep.equal(['native', 'native']);
    expect(result.reply).to.equal('served');
    expect(result.warnings.filter((warning) => warning.code === 'NTL_NATIVE_UNAVAILABLE')).to.deep.equal([]);
  });

});

// Runs against this repository's compiled sources, with NATIVE_TLS_LISTENER_ADDON set by the test.
const OVERRIDE_PROBE = `
import fs from 'node:fs';
import net from 'node:net';
import { createLocalTCPListener, nativeAvailable } from ${JSON.stringify(path.join(repoRoot, 'dist', 'src', 'index.js'))};
import { loadNativeBinding } from ${JSON.stringify(path.join(repoRoot, 'dist', 'src', 'native', 'load.js'))};
const listener = createLocalTCPListener({ port: 0 }, (socket) => socket.end('served'));
const { port } = await listener.listen();
const reply = await new Promise((resolve, reject) => {
  let data = '';
  net.connect(port, '127.0.0.1').on('data', (chunk) => (data += chunk)).on('end', () => resolve(data)).on('error', reject);
});
await listener.close();
let explicit = null;
try {
  createLocalTCPListener({ port: 0, backend: 'native' }, () => {});
} catch (error) {
  explicit = { code: error.code, tried: error.tried };
}
const loaded = loadNativeBinding().path;
const mapped = loaded !== null && fs.readFileSync('/proc/self/maps', 'utf8').includes(loaded);
console.log(JSON.stringify({ nativeAvailable: nativeAvailable(), loaded, mapped, backend: listener.backend, reply, explicit }));
`;

interface OverrideProbeResult {
  nativeAvailable: boolean;
  loaded: string | null;
  mapped: boolean;
  backend: string;
  reply: string;
  explicit: { code: string; tried: string[] } | null;
}

describe('NATIVE_TLS_LISTENER_ADDON: the loader takes the addon file it names, and nothing else', function () {
  this.timeout(30_000);
  const built = path.join(repoRoot, 'build', 'Release', 'native_acceptor.node');
  let dir: string;

  before(function () {
    if (process.platform !== 'linux' || !fs.existsSync(built)) this.skip(); // /proc/self/maps; a node-gyp build
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-addon-override-'));
    fs.writeFileSync(path.join(dir, 'probe.mjs'), OVERRIDE_PROBE);
  });

  after(function () {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function probe(addon: string): Promise<OverrideProbeResult> {
    const { stdout } = await execFileAsync(process.execPath, ['probe.mjs'], {
      cwd: dir,
      env: { ...envWithoutOverride(), NATIVE_TLS_LISTENER_ADDON: addon },
      timeout: 20_000,
    });
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as OverrideProbeResult;
  }

  it('loads the named file (a copy of the build, elsewhere) and serves on the native backend with it', async function () {
    const copy = path.join(dir, 'copied_acceptor.node');
    fs.copyFileSync(built, copy);
    const result = await probe(copy);
    expect(result).to.deep.include({ nativeAvailable: true, loaded: copy, mapped: true, backend: 'native', reply: 'served' });
  });

  it('falls back to the pure-JS backend, not to the build it would otherwise find, when the named file does not load', async function () {
    const missing = path.join(dir, 'missing.node');
    const result = await probe(missing);
    expect(result).to.deep.include({ nativeAvailable: false, loaded: null, backend: 'js', reply: 'served' });
    expect(result.explicit?.code).to.equal('ERR_NATIVE_UNAVAILABLE');
    expect(result.explicit?.tried).to.have.length(1);
    expect(result.explicit?.tried[0], 'the one path tried').to.satisfy((line: string) => line.startsWith(`${missing}: `));
  });
});
