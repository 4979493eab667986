// What a run of the scenarios leaves: the results (JSON, one line per trial), the ratio chart
// (SVG), the table on stdout, and with a full run the README's section.
import fs from 'node:fs';
import path from 'node:path';
import type { Binaries } from './build.js';
import { SCENARIOS } from './model.js';
import type { BenchResults, NodeRun } from './model.js';
import { machine } from './node_provisioning.js';
import { commandLine, ORDER } from './options.js';
import type { Options, Timings } from './options.js';
import { readmePath, repoRoot, resultsDir } from './paths.js';
import { formatTable, renderRatiosSvg } from './report.js';
import { updateReadme } from './readme-section.js';
import { evaluateGoals } from './scenarios.js';
import { stringifyLayered } from './stats.js';

export interface ScenarioRun {
  options: Options;
  timings: Timings;
  /** when the run started (Date.now()) */
  started: number;
  bins: Binaries;
  loadgenOpenssl: string;
  quiet: { waitedMs: number; loadedStarts: number };
  runs: Record<string, NodeRun>;
  failures: string[];
}

/** Writes the results and the chart, prints the table, and updates the README after a full run. */
export function reportScenarios({ options, timings, started, bins, loadgenOpenssl, quiet, runs, failures }: ScenarioRun): void {
    const results: BenchResults = {
      schema: 1,
      generatedAt: new Date().toISOString(),
      quick: options.quick,
      command: commandLine(),
      durationSeconds: Math.round((Date.now() - started) / 1000),
      machine: machine(),
      loadgen: { openssl: loadgenOpenssl, compiler: bins.compiler },
      settings: {
        ...timings,
        pinned: options.pin,
        niced: options.nice,
        contenderOrder: ORDER.join(','),
        waitedForQuietSeconds: Math.round(quiet.waitedMs / 1000),
        trialsStartedOnABusyMachine: quiet.loadedStarts,
      },
      runs,
      goals: evaluateGoals(runs),
      failures,
    };

    const complete = options.scenarios.length === SCENARIOS.length;
    const outFile = options.out ?? path.join(resultsDir, options.quick ? 'quick.json' : complete ? 'latest.json' : 'custom.json');
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    // runs > version > scenarios > id > contenders > id > trials > one line per trial
    fs.writeFileSync(outFile, `${stringifyLayered(results, 8)}\n`);
    const svgFile = outFile.endsWith('latest.json') ? path.join(path.dirname(outFile), 'ratios.svg') : outFile.replace(/\.json$/, '') + '-ratios.svg';
    fs.writeFileSync(svgFile, renderRatiosSvg(results));

    console.log(formatTable(results));
    console.log(`results: ${path.relative(repoRoot, outFile)}, chart: ${path.relative(repoRoot, svgFile)}`);
    if (!options.quick && outFile === path.join(resultsDir, 'latest.json') && options.readme) {
      console.log(updateReadme(readmePath, results));
    }
}

export function findLoadgenOpenssl(runs: Record<string, NodeRun>): string {
  for (const run of Object.values(runs)) {
    for (const scenario of Object.values(run.scenarios)) {
      for (const contender of Object.values(scenario.contenders)) {
        for (const trial of contender.trials) {
          const value = trial.raw?.loadgen?.openssl;
          if (typeof value === 'string') return value;
        }
      }
    }
  }
  return 'unknown';
}
