// Builds the C load generator and the trivial C server into benchmarks/bin/ (gitignored)
// when a binary is missing or older than its source. Needs a C compiler (`cc`) and the
// OpenSSL headers and libraries: Debian packages gcc (or build-essential) and libssl-dev.
//
//   node dist/benchmarks/build.js     builds (or says it is up to date)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchDir, binDir } from './paths.js';

export interface Binaries {
  loadgen: string;
  trivialServer: string;
  /** first line of `cc --version` */
  compiler: string;
}

const targets = [
  { name: 'loadgen', source: 'loadgen.c', libs: ['-lssl', '-lcrypto', '-lm'] },
  { name: 'trivial_server', source: 'trivial_server.c', libs: ['-lssl', '-lcrypto'] },
] as const;

function mtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

export function compilerVersion(): string {
  try {
    return execFileSync('cc', ['--version'], { encoding: 'utf8' }).split('\n')[0]?.trim() ?? 'unknown';
  } catch {
    return 'unavailable';
  }
}

export function ensureBinaries(log: (line: string) => void = () => {}): Binaries {
  fs.mkdirSync(binDir, { recursive: true });
  for (const target of targets) {
    const source = path.join(benchDir, target.source);
    const output = path.join(binDir, target.name);
    if (mtime(output) >= mtime(source)) continue;
    log(`building benchmarks/bin/${target.name} from benchmarks/${target.source}`);
    const temporary = `${output}.${process.pid}.tmp`;
    try {
      execFileSync('cc', ['-O2', '-Wall', '-o', temporary, source, ...target.libs], { stdio: ['ignore', 'inherit', 'inherit'] });
    } catch (error) {
      fs.rmSync(temporary, { force: true });
      throw new Error(
        `compiling benchmarks/${target.source} failed (${error instanceof Error ? error.message : String(error)}); ` +
          'the benchmark needs a C compiler and OpenSSL headers: apt-get install gcc libssl-dev',
      );
    }
    fs.renameSync(temporary, output);
  }
  return { loadgen: path.join(binDir, 'loadgen'), trivialServer: path.join(binDir, 'trivial_server'), compiler: compilerVersion() };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const built = ensureBinaries((line) => console.log(line));
  console.log(`up to date: ${built.loadgen}, ${built.trivialServer} (${built.compiler})`);
}
