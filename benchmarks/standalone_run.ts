// What the benchmark's stand-alone commands (bench:interleaved, bench:instructions) share: their
// options' checks (scenario ids, the results file's name), a trial context built without
// `npm run bench`'s option parser, and writing their results file.
import fs from 'node:fs';
import path from 'node:path';
import { ensureBinaries } from './build.js';
import { makeCertificates } from './certs.js';
import { SCENARIOS } from './model.js';
import type { ScenarioDef } from './model.js';
import { FULL } from './options.js';
import type { Options } from './options.js';
import { resultsDir } from './paths.js';
import { Progress } from './progress.js';
import { stringifyLayered } from './stats.js';
import type { Context } from './trial_processes.js';

/** Prints `message`, the command's usage line and the throughput scenarios, and exits 2. */
export function usageExit(usageLine: string, message: string): never {
  console.error(message);
  console.error(usageLine);
  console.error(`throughput scenarios: ${SCENARIOS.filter((s) => s.kind === 'throughput').map((s) => s.id).join(', ')}`);
  process.exit(2);
}

/** `--out`'s value: a file name ending in .json, written to benchmarks/results/. */
export function resultsFileName(name: string | undefined, usage: (message: string) => never): string {
  const text = name ?? '';
  if (!/^[\w.-]+\.json$/.test(text)) usage(`--out takes a file name ending in .json (written to benchmarks/results/), not ${JSON.stringify(text)}`);
  return text;
}

/** The throughput scenarios `ids` names, in that order. */
export function throughputScenarios(ids: readonly string[], usage: (message: string) => never): ScenarioDef[] {
  return ids.map((id) => {
    const scenario = SCENARIOS.find((s) => s.id === id);
    if (!scenario) usage(`unknown scenario ${id}`);
    if (scenario.kind !== 'throughput') usage(`${id} is not a throughput scenario`);
    return scenario;
  });
}

/** A trial context with the full run's timings, this process's Node and fresh certificates (the caller cleans them up). */
export function standaloneContext(settings: { quick: boolean; pin: boolean; warmConnections: number }): Context {
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const bins = ensureBinaries(log);
  const certs = makeCertificates();
  const options: Options = { quick: settings.quick, rounds: null, scenarios: [], nodes: [], out: null, pin: settings.pin, nice: false, readme: false, workersBench: false, workers: 0 };
  return { quiet: { leftMs: 0, waitedMs: 0, loadedStarts: 0 }, options, timings: { ...FULL, warmConnections: settings.warmConnections }, bins, certs, nodeBin: process.execPath, progress: new Progress(0, 0) };
}

/** Writes `json` to benchmarks/results/`name` and says where. */
export function writeResults(name: string, json: unknown): void {
  const file = path.join(resultsDir, name);
  fs.mkdirSync(resultsDir, { recursive: true });
  fs.writeFileSync(file, `${stringifyLayered(json, 4)}\n`);
  console.log(`results: ${path.relative(process.cwd(), file)}`);
}
