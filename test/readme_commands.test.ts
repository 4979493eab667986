// Every shell command the README gives a user, run as it stands. Each ```sh block is one
// session: its commands run in order, a server it starts keeps running for the commands after
// it, and what the block says (a port, ~) becomes the test's own (a free port, a fresh HOME).
// A command this suite cannot run itself (npm test runs this suite) must be one that .ci/run
// or a named script runs, and the test checks that it does. A command nobody runs fails.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { repoRoot } from './support/paths.js';
import { waitUntil, within } from './support/sockets.js';

const PROCESS_WAIT_MS = 20_000;
const CLI = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/** The README's ```sh blocks, each a list of commands (comments dropped, `\` lines joined). */
export function readmeShellBlocks(readme: string): string[][] {
  const blocks: string[][] = [];
  for (const match of readme.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    const joined = (match[1] ?? '').replace(/\\\n\s*/g, ' ');
    const commands = joined
      .split('\n')
      .map((line) => line.replace(/\s+#.*$/, '').replace(/^#.*$/, '').trim())
      .filter((line) => line !== '');
    blocks.push(commands);
  }
  return blocks;
}

/** A command's parts joined by `&&`, each run (or found run) on its own. */
function steps(command: string): string[] {
  return command.split('&&').map((part) => part.trim());
}

/** What the session has running and where: the port a README command names maps to the real one. */
interface Session {
  home: string;
  ports: Map<string, number>;
  children: ChildProcess[];
  output: Map<ChildProcess, { stdout: string; stderr: string }>;
}

interface Runner {
  /** Which README commands this runner takes. */
  matches: RegExp;
  /** Runs the command in the session; throws if it does not work as the README says. */
  run(command: string, session: Session): Promise<void>;
}

/** Runs `sh -c command` with the session's HOME; resolves with its output, rejects on failure. */
function shell(command: string, session: Session, input = ''): Promise<{ stdout: string; stderr: string }> {
  return within(
    new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', command], { cwd: repoRoot, env: { ...process.env, HOME: session.home, XDG_CONFIG_HOME: '' } });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.stdin.end(input);
      child.once('error', reject);
      child.once('close', (code) => (code === 0 ? resolve({ stdout, stderr }) : reject(new Error(`${command}: exit ${code}\n${stdout}\n${stderr}`))));
    }),
    command,
    PROCESS_WAIT_MS,
  );
}

/** The command with every port the README named replaced by the one really listening. */
function withRealPorts(command: string, session: Session): string {
  let real = command;
  for (const [named, port] of session.ports) real = real.replace(new RegExp(`(?<=[:= ])${named}(?=\\b)`, 'g'), String(port));
  return real;
}

/** Starts a long-running server command on a free port, and remembers the port it got. */
async function startServer(command: string, namedPort: string, session: Session, banner: RegExp): Promise<void> {
  // Its own process group: `npm start` runs the server as a child of npm, and both must go.
  const child = spawn('sh', ['-c', `exec ${command}`], { cwd: repoRoot, detached: true, env: { ...process.env, HOME: session.home, XDG_CONFIG_HOME: '' } });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  session.children.push(child);
  session.output.set(child, output);
  let exited = false;
  child.once('close', () => (exited = true));
  await waitUntil(() => banner.test(output.stdout) || exited, `${command} to listen`, PROCESS_WAIT_MS);
  const port = banner.exec(output.stdout)?.[1];
  if (port === undefined) throw new Error(`${command} did not start:\n${output.stdout}\n${output.stderr}`);
  session.ports.set(namedPort, Number(port));
}

function namedPortOf(command: string): string {
  const port = /--port (\d+)|\.js (\d+)/.exec(command);
  return port?.[1] ?? port?.[2] ?? '8443';
}

/** A command that .ci/run (or a script it runs) runs: the file must really contain it. */
function runBy(file: string, text: string): Runner['run'] {
  return () => {
    const source = fs.readFileSync(path.join(repoRoot, file), 'utf8');
    expect(source, `${file} runs it`).to.include(text);
    return Promise.resolve();
  };
}

const LISTENING = /^listening on [^\s]+:(\d+) /m;

const RUNNERS: Runner[] = [
  // npm install on a fresh clone is CI's clean `npm ci` (the lockfile's install).
  { matches: /^npm install$/, run: runBy('.ci/run', 'npm ci --no-audit --no-fund') },
  { matches: /^npm test$/, run: runBy('.ci/run', '\nnpm test\n') },
  { matches: /^npm run test:sanitize/, run: runBy('.ci/run', '\nnpm run test:sanitize\n') },
  {
    // The test tools' install line: every package is one .ci/run installs, and every program
    // the preflight requires comes from one of them.
    matches: /^apt-get install -y /,
    run: (command) => {
      const packages = command.slice('apt-get install -y '.length).split(' ');
      const ci = fs.readFileSync(path.join(repoRoot, '.ci/run'), 'utf8');
      for (const name of packages) expect(ci, `.ci/run installs ${name}`).to.match(new RegExp(`need\\+=\\([^)]*\\b${name}\\b`));
      const preflight = fs.readFileSync(path.join(repoRoot, 'scripts/test-preflight.mjs'), 'utf8');
      for (const [, name] of preflight.matchAll(/package: '([^']+)'/g)) expect(packages, `the README's line installs ${name}`).to.include(name);
      return Promise.resolve();
    },
  },
  { matches: /^npm pack$/, run: runBy('scripts/check-packed-install.mjs', "'pack'") },
  { matches: /^npm install \/path\/to\/native-tls-listener-[\d.]+\.tgz$/, run: runBy('scripts/check-packed-install.mjs', "'install'") },
  {
    // `npm start` serves on 8443: here on a free port, with the session's state.
    matches: /^npm start( -- .*)?$/,
    run: (command, session) =>
      startServer(`${command.includes(' -- ') ? command : `${command} --`} --port 0`.replace(/--port \d+ /, ''), namedPortOf(command), session, LISTENING),
  },
  {
    // npx runs the package's bin, dist/src/cli/main.js.
    matches: /^npx native-tls-listener( .*)?$/,
    run: (command, session) =>
      startServer(`node ${CLI}${command.slice('npx native-tls-listener'.length).replace(/--port \d+/, '--port 0')}`, namedPortOf(command), session, LISTENING),
  },
  {
    matches: /^node dist\/examples\/\w+\.js( .*)?$/,
    run: (command, session) => startServer(command.replace(/\.js \d+/, '.js 0'), namedPortOf(command), session, LISTENING),
  },
  {
    // A line protocol: say hello, then end it (`quit` for the CLI's, `bye` for the example's);
    // the chain must verify.
    matches: /^openssl s_client /,
    run: async (command, session) => {
      const { stdout, stderr } = await shell(withRealPorts(command, session), session, 'hello\nquit\nbye\n');
      expect(stderr, 'the chain verifies').to.include('verify return:1');
      expect(stdout).to.match(/hello|HELLO/);
    },
  },
  {
    matches: /^curl /,
    run: async (command, session) => {
      const { stdout } = await shell(`${withRealPorts(command, session)} --fail --silent --show-error`, session);
      expect(stdout.length).to.be.greaterThan(0);
    },
  },
];

const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const blocks = readmeShellBlocks(readme);

describe('README: every shell command in it works', function () {
  this.timeout(60_000);
  let session: Session;

  beforeEach(function () {
    session = { home: fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-readme-')), ports: new Map(), children: [], output: new Map() };
  });

  afterEach(async function () {
    for (const child of session.children) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        const closed = new Promise((resolve) => child.once('close', resolve));
        process.kill(-child.pid, 'SIGKILL');
        await closed;
      }
    }
    fs.rmSync(session.home, { recursive: true, force: true });
  });

  it('the README has shell commands, and each is one this suite knows how to run', function () {
    expect(blocks.length).to.be.greaterThan(2);
    for (const command of blocks.flat().flatMap(steps)) {
      const runners = RUNNERS.filter((runner) => runner.matches.test(command));
      expect(runners, `one way to run: ${command}`).to.have.length(1);
    }
  });

  blocks.forEach((commands, index) => {
    it(`block ${index + 1}: ${commands.join(' ; ')}`, async function () {
      for (const command of commands.flatMap(steps)) {
        const runner = RUNNERS.find((candidate) => candidate.matches.test(command));
        if (runner === undefined) throw new Error(`no way to run: ${command}`);
        await runner.run(command, session);
      }
    });
  });
});
