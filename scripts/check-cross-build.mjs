// Compiles and links the addon for systems CI cannot run it on (macOS on arm64 and x86_64,
// Linux with musl), with zig's C++ compiler, which carries those systems' headers and libc:
//   node scripts/check-cross-build.mjs --zig <path to zig> [--target aarch64-macos ...]
// Sources, defines and flags are binding.gyp's (with warnings as errors); the headers are the
// running Node's (Node-API and libuv's, the same on every system) and node-addon-api's. Each
// result is checked to be a shared object for that system and CPU. Nothing here runs it: that
// is what this check cannot say (README, Platforms).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// What each target's output must be: Mach-O's CPU type, or ELF's machine and the C library.
const TARGETS = {
  'aarch64-macos': { format: 'macho', cpu: 0x0100000c },
  'x86_64-macos': { format: 'macho', cpu: 0x01000007 },
  // musl's CMSG_NXTHDR compares a size_t with a pointer difference: -Wsign-compare fires in
  // every use of the macro (descriptor_passing.cc), not in code of ours.
  'x86_64-linux-musl': { format: 'elf', machine: 62, flags: ['-Wno-sign-compare'] },
};

const { values } = parseArgs({
  options: { zig: { type: 'string' }, target: { type: 'string', multiple: true } },
});
if (!values.zig) fail('usage: check-cross-build.mjs --zig <zig> [--target <triple>]...');
const targets = values.target ?? Object.keys(TARGETS);
for (const target of targets) if (!TARGETS[target]) fail(`unknown target ${target}; known: ${Object.keys(TARGETS).join(', ')}`);

// binding.gyp is a Python literal: JSON once its '#' comments are gone.
const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, ''));
const addon = gyp.targets[0];
const nodeHeaders = path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node');
if (!fs.existsSync(path.join(nodeHeaders, 'node_api.h'))) fail(`no Node headers in ${nodeHeaders}`);
const flags = [
  ...addon.cflags_cc,
  ...addon.cflags,
  '-Werror',
  // node-gyp compiles every object of a shared library position-independent on its own; zig
  // does not for ELF targets, and thread_local then takes a model -shared cannot link.
  '-fPIC',
  ...addon.defines.map((define) => `-D${define}`),
  `-I${nodeHeaders}`,
  `-I${path.resolve(root, require('node-addon-api').include_dir)}`,
];

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-cross-'));
try {
  for (const target of targets) {
    const started = Date.now();
    const dir = path.join(scratch, target);
    fs.mkdirSync(dir);
    const objects = addon.sources.map((source) => path.join(dir, `${path.basename(source, '.cc')}.o`));
    await inParallel(addon.sources.map((source, i) => () =>
      run([values.zig, 'c++', '-target', target, ...flags, ...(TARGETS[target].flags ?? []), '-c', path.join(root, source), '-o', objects[i]])));
    const output = path.join(dir, 'native_acceptor.node');
    // Node-API and libuv symbols resolve against the node binary that loads the addon.
    const link = TARGETS[target].format === 'macho' ? ['-Wl,-undefined,dynamic_lookup'] : [];
    await run([values.zig, 'c++', '-target', target, '-shared', '-o', output, ...objects, ...link]);
    const kind = checkBinary(output, TARGETS[target]);
    console.log(`cross-build: ${target}: ${kind}, ${fs.statSync(output).size} bytes, ${Math.round((Date.now() - started) / 1000)} s`);
  }
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}

/** Throws unless `file` is a shared object for `expected`; returns what it is, in words. */
function checkBinary(file, expected) {
  const bytes = fs.readFileSync(file);
  if (expected.format === 'macho') {
    // mach_header_64: magic, cputype, cpusubtype, filetype (MH_DYLIB 6, MH_BUNDLE 8).
    const [magic, cpu, , filetype] = [0, 4, 8, 12].map((offset) => bytes.readUInt32LE(offset));
    if (magic !== 0xfeedfacf || cpu !== expected.cpu || (filetype !== 6 && filetype !== 8)) {
      fail(`${file} is not a 64-bit Mach-O library for CPU 0x${expected.cpu.toString(16)} (magic 0x${magic.toString(16)}, cpu 0x${cpu.toString(16)}, filetype ${filetype})`);
    }
    return `Mach-O ${filetype === 8 ? 'bundle' : 'dylib'}`;
  }
  // ELF64: e_type (ET_DYN 3) at 16, e_machine at 18; musl's C library is plain libc.so.
  if (bytes.readUInt32BE(0) !== 0x7f454c46 || bytes.readUInt16LE(16) !== 3 || bytes.readUInt16LE(18) !== expected.machine) {
    fail(`${file} is not an ELF shared object for machine ${expected.machine}`);
  }
  const needed = bytes.includes('libc.so.6\0') ? 'glibc' : bytes.includes('libc.so\0') ? 'musl' : 'no C library';
  if (needed !== 'musl') fail(`${file} links ${needed}, not musl's libc.so`);
  return 'ELF shared object linked with musl libc.so';
}

/** Runs the jobs two at a time (the CI machine has two cores). */
async function inParallel(jobs) {
  const queue = [...jobs];
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) await job();
  };
  await Promise.all([worker(), worker()]).catch((error) => fail(error.message));
}

function run(command) {
  return new Promise((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${path.basename(command[0])} ${command.slice(1, 4).join(' ')} ... ${command.at(-1)}: ${signal ?? `exit status ${code}`}`)));
  });
}

function fail(message) {
  console.error(`cross-build: ${message}`);
  process.exit(1);
}
