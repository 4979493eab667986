// Where things are, seen from the compiled tests (dist/test/...). The C shim is read from the
// source tree (tsc does not copy it); TypeScript fixtures are run compiled, from dist/.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url)); // <root>/dist/test/support

export const repoRoot = path.resolve(here, '..', '..', '..');
export const distTestDir = path.resolve(here, '..');

/** A compiled TypeScript fixture: test/fixtures/<name>.ts -> dist/test/fixtures/<name>.js */
export function compiledFixture(name: string): string {
  return path.join(distTestDir, 'fixtures', `${name}.js`);
}

/** A fixture that is not TypeScript, in the source tree: test/fixtures/<name> */
export function sourceFixture(name: string): string {
  return path.join(repoRoot, 'test', 'fixtures', name);
}
