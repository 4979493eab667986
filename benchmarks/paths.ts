// Where things are. This code runs compiled, from dist/benchmarks/; the C sources, the
// binaries it builds and the results live in benchmarks/ at the repository root.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && fs.existsSync(path.join(dir, 'benchmarks', 'loadgen.c'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the repository root above ${start}`);
    dir = parent;
  }
}

export const repoRoot = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));
export const benchDir = path.join(repoRoot, 'benchmarks');
export const binDir = path.join(benchDir, 'bin');
export const resultsDir = path.join(benchDir, 'results');
export const node24CacheDir = path.join(benchDir, '.node24');
/** The compiled server script, next to this file in dist/benchmarks/. */
export const serverScript = fileURLToPath(new URL('./server.js', import.meta.url));
export const readmePath = path.join(repoRoot, 'README.md');
/** benchmarks/README.md: the method, and the full tables of the last run. */
export const benchReadmePath = path.join(benchDir, 'README.md');
