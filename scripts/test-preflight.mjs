#!/usr/bin/env node
// Run by `npm test` before the suite (the pretest script): the suite drives real programs, and
// one that is missing would show up as dozens of confusing failures ("spawn socat ENOENT",
// "done() called multiple times", "cleanup failed"). This names every missing program and the
// one command that installs them all, and stops the run. The Debian package names are those
// .ci/run installs.
import fs from 'node:fs';
import path from 'node:path';

/** Programs the suite runs, each with the Debian package that provides it. */
export const REQUIRED_TOOLS = [
  { command: 'openssl', package: 'openssl', why: 'openssl s_client as a TLS client' },
  { command: 'curl', package: 'curl', why: 'HTTPS client' },
  { command: 'cc', package: 'gcc', why: 'builds the accept fault shim' },
  { command: 'prlimit', package: 'util-linux', why: 'descriptor limits' },
  { command: 'setpriv', package: 'util-linux', why: 'runs the CLI as an unprivileged user' },
  { command: 'unshare', package: 'util-linux', why: 'read-only mounts' },
  { command: 'strace', package: 'strace', why: 'counts system calls per connection' },
  { command: 'haproxy', package: 'haproxy', why: 'sends real PROXY protocol headers' },
  { command: 'systemd-socket-activate', package: 'systemd', why: 'socket activation' },
  { command: 'socat', package: 'socat', why: "receives sd_notify datagrams" },
];

/** Files the compiler needs besides the program (cc without libc6-dev compiles nothing). */
const REQUIRED_FILES = [{ file: '/usr/include/stdio.h', package: 'libc6-dev', why: 'C headers for cc' }];

/** Used when present; their tests are skipped, with a note, when not. */
const OPTIONAL_TOOLS = [{ command: 'chromium', package: 'chromium', why: 'the live page test' }];

function onPath(command) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    try {
      fs.accessSync(path.join(dir, command), fs.constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

export function missingTools() {
  return [
    ...REQUIRED_TOOLS.filter(({ command }) => !onPath(command)).map(({ command, package: pkg, why }) => ({ name: command, package: pkg, why })),
    ...REQUIRED_FILES.filter(({ file }) => !fs.existsSync(file)).map(({ file, package: pkg, why }) => ({ name: file, package: pkg, why })),
  ];
}

function main() {
  const missing = missingTools();
  for (const { command, package: pkg, why } of OPTIONAL_TOOLS) {
    if (!onPath(command)) console.warn(`test preflight: ${command} not found (${why} is skipped): apt-get install -y ${pkg}`);
  }
  if (process.platform !== 'linux' || missing.length === 0) return;
  const packages = [...new Set(missing.map((entry) => entry.package))];
  console.error('test preflight: the test suite needs programs that are not installed:');
  for (const { name, package: pkg, why } of missing) console.error(`  ${name} (Debian package ${pkg}): ${why}`);
  console.error(`install them with:\n  apt-get install -y ${packages.join(' ')}`);
  process.exitCode = 1;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) main();
