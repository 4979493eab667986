// The package's error codes as a user meets them: every code in ErrorCodes is one the package
// really produces, and the README lists each of them, so that a code a user can catch is never
// missing from the docs and a documented code is never dead. Read from the source tree, where
// codes are produced as `ErrorCodes.NAME` or as a literal 'ERR_...' (C++ and a few TS types).
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { ErrorCodes } from '../src/index.js';
import { repoRoot } from './support/paths.js';

/** Codes that Node itself produces and the package only passes on or names in comments. */
const NODE_OWN_CODES = new Set(['ERR_TLS_SESSION_ATTACK']);
/** Codes kept in ErrorCodes for users' imports, no longer produced; the README says so. */
const RETIRED_CODES = new Set<string>(['ERR_TLS_CLIENT_HELLO_INVALID']);

function sourceFiles(dir: string, extensions: readonly string[]): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && extensions.some((extension) => entry.name.endsWith(extension)))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

const producers = [...sourceFiles(path.join(repoRoot, 'src'), ['.ts']), ...sourceFiles(path.join(repoRoot, 'native'), ['.cc', '.h'])]
  .filter((file) => path.basename(file) !== 'errors.ts')
  .map((file) => fs.readFileSync(file, 'utf8'));
const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const codes = Object.entries(ErrorCodes);

describe('error codes', function () {
  it('ErrorCodes holds codes, each once', function () {
    expect(codes.length).to.be.greaterThan(5);
    for (const [, code] of codes) expect(code).to.match(/^ERR_[A-Z0-9_]+$/);
    expect(new Set(codes.map(([, code]) => code)).size).to.equal(codes.length);
  });

  for (const [name, code] of codes) {
    const retired = RETIRED_CODES.has(code);
    it(`${code} is ${retired ? 'no longer produced, and the README says so' : 'produced by the package and listed in the README'}`, function () {
      const produced = producers.some((text) => text.includes(`ErrorCodes.${name}`) || text.includes(`'${code}'`) || text.includes(`"${code}"`));
      expect(produced, `${code} is produced somewhere in src/ or native/`).to.equal(!retired);
      expect(readme, `the README lists ${code}`).to.include(`\`${code}\``);
      if (retired) {
        const row = readme.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
        expect(row, `the README's error code table says ${code} is no longer produced`).to.match(/no longer produced/);
      }
    });
  }

  it('every ERR_ code the package produces as a literal is in ErrorCodes', function () {
    const known = new Set<string>(codes.map(([, code]) => code));
    const literals = new Set(producers.flatMap((text) => [...text.matchAll(/['"](ERR_[A-Z0-9_]+)['"]/g)].map((match) => match[1] ?? '')));
    const unknown = [...literals].filter((code) => !known.has(code) && !NODE_OWN_CODES.has(code) && !code.startsWith('ERR_SSL_'));
    expect(unknown).to.deep.equal([]);
  });
});
