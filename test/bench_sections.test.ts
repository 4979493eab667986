// The generated benchmark sections of the READMEs: the harness rewrites only what lies between
// its markers, each on a line of its own, so prose that names a marker is never overwritten
// (it once was: the tables landed inside a sentence of benchmarks/README.md).
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { END, START, markedSection, replaceMarked } from '../benchmarks/readme-section.js';
import { WORKERS_END, WORKERS_START } from '../benchmarks/workers.js';
import { repoRoot } from './support/paths.js';

describe('generated benchmark sections', () => {
  it('skips a marker named inside a line of prose and replaces the section between line markers', () => {
    const text = `the section between \`${START}\` and \`${END}\` is generated\n\n${START}\nold table\n${END}\nafter\n`;
    const updated = replaceMarked(text, START, END, 'new table');
    expect(updated).to.equal(`the section between \`${START}\` and \`${END}\` is generated\n\n${START}\nnew table\n${END}\nafter\n`);
  });

  it('finds no section when a marker is missing or only named in prose', () => {
    expect(markedSection(`${START}\nno end\n`, START, END)).to.equal(null);
    expect(markedSection(`see \`${START}\`\n${END}\n`, START, END)).to.equal(null);
    expect(replaceMarked('nothing here', START, END, 'x')).to.equal(null);
  });

  for (const file of ['README.md', 'benchmarks/README.md']) {
    it(`${file} has one single-thread and one multi-core section, each between markers on their own lines`, () => {
      const text = fs.readFileSync(path.join(repoRoot, file), 'utf8');
      for (const [start, end] of [[START, END], [WORKERS_START, WORKERS_END]] as const) {
        const lines = text.split('\n');
        expect(lines.filter((line) => line === start), `${file}: ${start}`).to.have.length(1);
        expect(lines.filter((line) => line === end), `${file}: ${end}`).to.have.length(1);
        expect(markedSection(text, start, end), `${file}: ${start}...${end}`).to.not.equal(null);
      }
    });
  }
});
