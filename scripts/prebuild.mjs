// Runs from `prepack`: builds the Node-API prebuild for this platform (and, on linux-x64, one
// for linux-arm64: see CROSS below) into prebuilds/, which ships in the tarball (and is never
// committed). One binary per platform and architecture
// serves every Node version, since the addon uses Node-API 9 and libuv's stable ABI only.
//
// It wraps `prebuildify --napi --strip` for three reasons:
//  - prebuildify's default target is the newest Node it knows, whose headers node-gyp would
//    download; building against the running Node (whose headers are installed with it, or
//    named by npm's `nodedir`) works offline and gives the same Node-API binary;
//  - it builds in a scratch copy of the sources, so the developer's build/ (which the
//    loader prefers, and which a running test process may have loaded) is left alone;
//  - the binary is tagged glibc, so a musl system compiles instead of loading it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// On linux-x64 a linux-arm64 prebuild is cross-compiled beside it when Debian's
// g++-aarch64-linux-gnu is installed (CI installs it and checks the result under qemu-user);
// without it, only this machine's prebuild is made, with a note.
const CROSS = {
  arm64: { compiler: 'aarch64-linux-gnu-g++', CC: 'aarch64-linux-gnu-gcc', CXX: 'aarch64-linux-gnu-g++', strip: 'aarch64-linux-gnu-strip' },
};
const archs = [process.arch];
if (process.platform === 'linux' && process.arch === 'x64') {
  if (onPath(CROSS.arm64.compiler)) archs.push('arm64');
  else console.log(`prebuild: no linux-arm64 prebuild (${CROSS.arm64.compiler} is not installed)`);
}

const built = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-prebuilds-'));
try {
  for (const arch of archs) {
    if (!prebuild(arch, built)) {
      process.exitCode = 1;
      break;
    }
  }
  if (process.exitCode !== 1) {
    fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
    fs.cpSync(built, path.join(root, 'prebuilds'), { recursive: true });
    for (const file of listFiles(path.join(root, 'prebuilds'))) console.log(`prebuild: ${path.relative(root, file)}`);
  }
} finally {
  fs.rmSync(built, { recursive: true, force: true });
}

/** Builds the prebuild for `arch` into `out`/prebuilds/<platform>-<arch>; false on failure. */
function prebuild(arch, out) {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-prebuild-'));
  try {
    for (const entry of ['package.json', 'binding.gyp', 'native']) {
      fs.cpSync(path.join(root, entry), path.join(scratch, entry), { recursive: true });
    }
    // binding.gyp asks node-addon-api for its include directory and gyp targets.
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(scratch, 'node_modules'), 'dir');

    const env = { ...process.env };
    const nodePrefix = path.dirname(path.dirname(process.execPath));
    if (!env.npm_config_nodedir && fs.existsSync(path.join(nodePrefix, 'include', 'node', 'node_api.h'))) {
      env.npm_config_nodedir = nodePrefix;
    }
    const cross = arch === process.arch ? undefined : CROSS[arch];
    if (cross) Object.assign(env, { CC: cross.CC, CXX: cross.CXX, PREBUILD_STRIP_BIN: cross.strip });
    const prebuildify = require.resolve('prebuildify/bin.js');
    const args = [prebuildify, '--napi', '--strip', '--tag-libc', '--arch', arch, '--target', `node@${process.versions.node}`, scratch];
    const result = spawnSync(process.execPath, args, { stdio: 'inherit', env });
    if (result.status !== 0) {
      console.error(`prebuild: prebuildify for ${arch} failed (${result.error?.message ?? `exit status ${result.status}`})`);
      return false;
    }
    fs.cpSync(path.join(scratch, 'prebuilds'), out, { recursive: true });
    return true;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function onPath(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function listFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? listFiles(full) : [full];
  });
}
