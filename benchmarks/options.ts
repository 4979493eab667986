// The harness's command line (`npm run bench -- ...`, see run.ts for every option) and the
// timings of a full and a quick run.
import path from 'node:path';
import { SCENARIOS } from './model.js';
import type { ContenderId, ScenarioId } from './model.js';
import { defaultWorkerCount } from './workers.js';

/** The id `--scenario` knows the multi-core benchmark by. */
export const WORKERS_SCENARIO = 'workers';

export interface Options {
  quick: boolean;
  rounds: number | null;
  scenarios: ScenarioId[];
  nodes: string[];
  out: string | null;
  pin: boolean;
  nice: boolean;
  readme: boolean;
  /** run the multi-core benchmark (benchmarks/workers.ts) after the scenarios */
  workersBench: boolean;
  /** its worker count (--workers N; default every core, at least 2) */
  workers: number;
}

export interface Timings {
  roundsThroughput: number;
  roundsLatency: number;
  roundsMemory: number;
  warmSeconds: number;
  /**
   * Throughput and latency trials warm up with this many connections, not warmSeconds of load
   * (0: warmSeconds). V8 tiers code up by how often it runs, not by time: at one connection in
   * flight 0.5 s is about 350 handshakes, and the measured window then held most of the JIT
   * work of the first few thousand, more of it for the contender with more JS.
   */
  warmConnections: number;
  measureSeconds: number;
  latencySeconds: number;
  concurrency: number;
  holdConnections: number;
  holdWarmConnections: number;
  probeSeconds: number;
}

export const FULL: Timings = {
  roundsThroughput: 4,
  roundsLatency: 3,
  roundsMemory: 3,
  warmSeconds: 0.5,
  warmConnections: 6000,
  measureSeconds: 2,
  latencySeconds: 3.5,
  concurrency: 64,
  holdConnections: 5000,
  holdWarmConnections: 300,
  probeSeconds: 1,
};

// Every scenario and contender once, kept under 2 minutes on 2 cores (CI's smoke run).
export const QUICK: Timings = {
  roundsThroughput: 1,
  roundsLatency: 1,
  roundsMemory: 1,
  warmSeconds: 0.2,
  warmConnections: 0,
  measureSeconds: 0.4,
  latencySeconds: 0.6,
  concurrency: 32,
  holdConnections: 200,
  holdWarmConnections: 50,
  probeSeconds: 0.3,
};

export const ORDER: readonly ContenderId[] = ['node', 'native', 'js', 'c'];

function usage(message?: string): never {
  if (message) console.error(`bench: ${message}`);
  console.error('usage: npm run bench [-- --quick] [--rounds N] [--scenario ID[,ID]] [--node24] [--node PATH|current] [--out FILE] [--pin] [--nice] [--no-readme] [--workers N] [--no-workers]');
  console.error(`scenarios: ${SCENARIOS.map((s) => s.id).join(', ')}, ${WORKERS_SCENARIO} (the multi-core benchmark; --workers N, --no-workers)`);
  process.exit(2);
}

/** The command as the results record it: `npm run bench -- <arguments>`. */
export function commandLine(): string {
  return `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
}

export function parseOptions(argv: string[]): Options {
  const options: Options = { quick: false, rounds: null, scenarios: [], nodes: [], out: null, pin: false, nice: false, readme: true, workersBench: true, workers: defaultWorkerCount() };
  let node24 = false;
  let scenariosGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`${arg} needs a value`);
      return v;
    };
    if (arg === '--quick') options.quick = true;
    else if (arg === '--rounds') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1 || n > 50) usage('--rounds must be an integer in [1, 50]');
      options.rounds = n;
    } else if (arg === '--scenario') {
      scenariosGiven = true;
      for (const id of value().split(',')) {
        if (id === WORKERS_SCENARIO) continue;
        if (!SCENARIOS.some((s) => s.id === id)) usage(`unknown scenario ${id}`);
        options.scenarios.push(id as ScenarioId);
      }
    } else if (arg === '--node24') node24 = true;
    else if (arg === '--node') options.nodes.push(value());
    else if (arg === '--out') options.out = path.resolve(value());
    else if (arg === '--pin') options.pin = true;
    else if (arg === '--nice') options.nice = true;
    else if (arg === '--no-readme') options.readme = false;
    else if (arg === '--no-workers') options.workersBench = false;
    else if (arg === '--workers') {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 2 || n > 256) usage('--workers must be an integer in [2, 256]');
      options.workers = n;
    } else if (arg === '--help' || arg === '-h') usage();
    else usage(`unknown option ${arg}`);
  }
  if (node24) options.nodes.push('node24');
  if (options.nodes.length === 0) options.nodes = options.quick ? ['current'] : ['current', 'node24'];
  // `--scenario workers` (alone or with others) selects the multi-core benchmark; a list without
  // it leaves it out.
  if (scenariosGiven) options.workersBench &&= argv.some((a, i) => argv[i - 1] === '--scenario' && a.split(',').includes(WORKERS_SCENARIO));
  if (options.scenarios.length === 0 && !(scenariosGiven && options.workersBench)) options.scenarios = SCENARIOS.map((s) => s.id);
  return options;
}
