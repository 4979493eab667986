// Proves what a user gets from the package tarball: `npm pack`, then, for each Node given,
// install the tarball into an empty project with no compiler reachable (PATH holds only
// `node`, `npm` and `sh`), and load it the ways users do (import and require). The prebuild
// must serve: the native backend available, and nothing compiled at install.
//
//   node scripts/check-packed-install.mjs [--node PATH]... [--reuse-build] [--json]
//
// --node         a Node binary to install and run with (repeatable; default: this one)
// --reuse-build  pack without lifecycle scripts: reuse dist/ as compiled, and prebuilds/ if
//                there is one for this platform (else build it); what the test suite uses, so
//                packing neither recompiles the tests it runs in nor rebuilds build/
// --json         print one JSON summary line (for the test suite) instead of a report
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const COMPILER_TOOLS = ['cc', 'c++', 'gcc', 'g++', 'make', 'python3', 'python', 'clang', 'clang++'];

// Serves one connection on the native backend: the addon is not only found but works.
const SERVE_ONE = `
  const listener = createLocalTCPListener({ port: 0, backend: 'native' }, (socket) => socket.end('served'));
  listener.listen().then(({ port }) => new Promise((resolve, reject) => {
    let reply = '';
    net.connect(port, '127.0.0.1').on('data', (chunk) => (reply += chunk)).on('end', () => resolve(reply)).on('error', reject);
  })).then(async (reply) => {
    await listener.close();
    console.log(JSON.stringify({ nativeAvailable: nativeAvailable(), backend: listener.backend, reply }));
  });
`;

/** How each kind of consumer loads the package, as `node <args>` runs it. */
const LOADERS = {
  import: ['--input-type=module', '-e', `import net from 'node:net';\nimport { createLocalTCPListener, nativeAvailable } from 'native-tls-listener';\n${SERVE_ONE}`],
  require: ['-e', `const net = require('node:net');\nconst { createLocalTCPListener, nativeAvailable } = require('native-tls-listener');\n${SERVE_ONE}`],
};

function parseArgs(argv) {
  const options = { nodes: [], reuseBuild: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--node') options.nodes.push(path.resolve(argv[++i] ?? ''));
    else if (arg === '--reuse-build') options.reuseBuild = true;
    else if (arg === '--json') options.json = true;
    else throw new Error(`unknown argument ${arg}`);
  }
  if (options.nodes.length === 0) options.nodes.push(process.execPath);
  return options;
}

function run(command, args, opts) {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (result.status !== 0) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
    throw new Error(`${path.basename(command)} ${args.join(' ')} failed (${result.error?.message ?? `exit ${result.status}`}):\n${output}`);
  }
  return result;
}

function findOnPath(name, searchPath) {
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

/** npm's own entry point, so it can run under any Node through a symlinked `npm`. */
function npmCli() {
  const npm = findOnPath('npm', process.env.PATH ?? '');
  if (!npm) throw new Error('npm is not on PATH');
  return fs.realpathSync(npm);
}

function pack(scratch, reuseBuild) {
  const out = path.join(scratch, 'pack');
  fs.mkdirSync(out);
  if (reuseBuild) {
    const platformPrebuilds = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    if (!fs.existsSync(platformPrebuilds)) run(process.execPath, [path.join(root, 'scripts', 'prebuild.mjs')], { cwd: root });
    run(process.execPath, [npmCli(), 'pack', '--ignore-scripts', '--pack-destination', out], { cwd: root });
  } else {
    run(process.execPath, [npmCli(), 'pack', '--pack-destination', out], { cwd: root });
  }
  const tarballs = fs.readdirSync(out).filter((name) => name.endsWith('.tgz'));
  if (tarballs.length !== 1) throw new Error(`npm pack made ${tarballs.length} tarballs`);
  const tarball = path.join(out, tarballs[0]);
  const files = run('tar', ['-tzf', tarball]).stdout.split('\n').filter(Boolean).map((name) => name.replace(/^package\//, ''));
  return { tarball, files };
}

/**
 * A directory of symlinks to `node`, `npm` and `sh` (npm runs install scripts with `sh` from
 * PATH) only: the PATH of a machine without compilers.
 */
function bareBin(scratch, node, label) {
  const bin = path.join(scratch, `bin-${label}`);
  fs.mkdirSync(bin);
  fs.symlinkSync(node, path.join(bin, 'node'));
  fs.symlinkSync(npmCli(), path.join(bin, 'npm'));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  const reachable = COMPILER_TOOLS.filter((tool) => findOnPath(tool, bin));
  if (reachable.length > 0) throw new Error(`compiler tools reachable: ${reachable.join(', ')}`);
  return bin;
}

/** The environment of a plain shell: no npm_* variables from a calling npm, no loader overrides. */
function consumerEnv(bin) {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) || key === 'INIT_CWD' || key === 'PREBUILDS_ONLY' || key === 'NATIVE_TLS_LISTENER_PREBUILD') continue;
    if (key === 'NODE_OPTIONS' || key === 'NODE_PATH') continue;
    env[key] = value;
  }
  env.PATH = bin;
  return env;
}

function checkConsumer(scratch, tarball, node, label) {
  const bin = bareBin(scratch, node, label);
  const env = consumerEnv(bin);
  const project = path.join(scratch, `consumer-${label}`);
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2));
  const nodeVersion = run(path.join(bin, 'node'), ['--version'], { env }).stdout.trim();
  const install = run(
    path.join(bin, 'node'),
    [npmCli(), 'install', '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', tarball],
    { cwd: project, env },
  );
  const installLog = `${install.stdout}${install.stderr}`;
  const installed = path.join(project, 'node_modules', 'native-tls-listener');
  const result = {
    node: nodeVersion,
    // What a compile would have printed; a fitting prebuild means none of it.
    compiledAtInstall: /gyp (info|ERR!)|CXX\(target\)/.test(installLog),
    buildDirectory: fs.existsSync(path.join(installed, 'build')),
    loaders: {},
  };
  // The command the package installs, run the way the README gives it: `npx native-tls-listener`.
  const version = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')).version;
  const command = spawnSync(path.join(bin, 'node'), [npmCli(), 'exec', '--no', '--', 'native-tls-listener', '--version'], {
    cwd: project,
    env,
    encoding: 'utf8',
    timeout: 30_000,
  });
  result.command =
    command.status === 0 && command.stdout.trim() === version
      ? 'runs'
      : `npx native-tls-listener --version: exit ${command.status}, ${`${command.stdout}${command.stderr}`.trim().slice(0, 300)}`;
  for (const [kind, args] of Object.entries(LOADERS)) {
    const probe = spawnSync(path.join(bin, 'node'), args, { cwd: project, env, encoding: 'utf8', timeout: 30_000 });
    const last = probe.stdout.trim().split('\n').at(-1) ?? '';
    try {
      result.loaders[kind] = JSON.parse(last);
    } catch {
      result.loaders[kind] = { error: `${probe.stderr || probe.stdout}`.trim().split('\n').slice(0, 5).join('\n') };
    }
  }
  return result;
}

/**
 * What the tarball holds besides code: the licence, and for every source map the sources it
 * names (a map pointing at files that do not ship only misleads a debugger).
 */
function checkContents(scratch, tarball) {
  const extracted = path.join(scratch, 'extracted');
  fs.mkdirSync(extracted);
  run('tar', ['-xzf', tarball, '-C', extracted]);
  const packageDir = path.join(extracted, 'package');
  const problems = [];
  const license = path.join(packageDir, 'LICENSE');
  if (!fs.existsSync(license)) problems.push('the tarball has no LICENSE');
  else if (!/^MIT License/.test(fs.readFileSync(license, 'utf8'))) problems.push('LICENSE is not the MIT licence');
  let maps = 0;
  for (const file of listFiles(packageDir)) {
    if (file.endsWith('.js')) {
      const reference = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(fs.readFileSync(file, 'utf8'))?.[1];
      if (reference && !fs.existsSync(path.resolve(path.dirname(file), reference))) {
        problems.push(`${path.relative(packageDir, file)} names a source map that does not ship: ${reference}`);
      }
    } else if (file.endsWith('.map')) {
      maps++;
      const map = JSON.parse(fs.readFileSync(file, 'utf8'));
      for (const source of map.sources ?? []) {
        const resolved = path.resolve(path.dirname(file), map.sourceRoot ?? '', source);
        if (!fs.existsSync(resolved)) problems.push(`${path.relative(packageDir, file)} names a source that does not ship: ${source}`);
      }
    }
  }
  return { sourceMaps: maps, problems };
}

function listFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? listFiles(full) : [full];
  });
}

function problemsOf(result) {
  const problems = [];
  if (result.compiledAtInstall) problems.push('the install compiled (or tried to compile) the addon');
  if (result.buildDirectory) problems.push('the installed package has a build/ directory');
  if (result.command !== 'runs') problems.push(result.command);
  for (const [kind, outcome] of Object.entries(result.loaders)) {
    if (outcome.error) problems.push(`${kind}: ${outcome.error}`);
    else if (outcome.nativeAvailable !== true || outcome.backend !== 'native' || outcome.reply !== 'served') {
      problems.push(`${kind}: ${JSON.stringify(outcome)}`);
    }
  }
  return problems;
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-packed-'));
  try {
    const { tarball, files } = pack(scratch, options.reuseBuild);
    const prebuilds = files.filter((file) => file.startsWith('prebuilds/') && file.endsWith('.node'));
    const contents = checkContents(scratch, tarball);
    const summary = { tarball: path.basename(tarball), prebuilds, sourceMaps: contents.sourceMaps, consumers: [], problems: [...contents.problems] };
    if (!prebuilds.some((file) => file.startsWith(`prebuilds/${process.platform}-${process.arch}/`))) {
      summary.problems.push(`the tarball has no prebuild for ${process.platform}-${process.arch}`);
    }
    options.nodes.forEach((node, index) => {
      const result = checkConsumer(scratch, tarball, node, String(index));
      summary.consumers.push(result);
      summary.problems.push(...problemsOf(result).map((problem) => `Node ${result.node}: ${problem}`));
    });
    if (options.json) {
      console.log(JSON.stringify(summary));
    } else {
      console.log(`${summary.tarball}: prebuilds ${prebuilds.join(', ') || 'none'}; ${summary.sourceMaps} source maps`);
      for (const consumer of summary.consumers) {
        const loaders = Object.entries(consumer.loaders).map(([kind, outcome]) => `${kind} nativeAvailable=${outcome.nativeAvailable}`);
        console.log(`Node ${consumer.node}, no compiler on PATH: compiled at install: ${consumer.compiledAtInstall}; ${loaders.join('; ')}`);
      }
      for (const problem of summary.problems) console.error(`PROBLEM: ${problem}`);
    }
    process.exitCode = summary.problems.length === 0 ? 0 : 1;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main();
