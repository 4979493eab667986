// The `workers` option: how many worker threads serve a listener, what they run, and what
// Node's Worker gets passed through. Checked on the main thread before any thread starts.
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ResourceLimits } from 'node:worker_threads';
import { codedError, ErrorCodes } from '../errors.js';
import { checkInteger } from '../validation.js';

export interface WorkersOptions {
  /** Worker threads (default os.availableParallelism()). */
  count?: number;
  /**
   * The module each worker imports: its default export is the connection handler; for a TLS
   * listener an optional named export `http` is the SNI route (as the `http` option).
   * A path (relative to the current directory) or a file: URL.
   */
  module: string | URL;
  resourceLimits?: ResourceLimits;
  env?: NodeJS.ProcessEnv;
  execArgv?: string[];
  /** Given to the module as `workerData` (node:worker_threads). Must be cloneable. */
  workerData?: unknown;
}

export interface ResolvedWorkersOptions {
  count: number;
  moduleUrl: string;
  resourceLimits?: ResourceLimits;
  env?: NodeJS.ProcessEnv;
  execArgv?: string[];
  workerData?: unknown;
}

const workersKeys = new Set(['count', 'module', 'resourceLimits', 'env', 'execArgv', 'workerData']);

export function resolveWorkersOptions(options: WorkersOptions): ResolvedWorkersOptions {
  if (typeof options !== 'object' || options === null) throw codedError(ErrorCodes.INVALID_OPTION, 'workers must be an object');
  for (const key of Object.keys(options)) {
    if (!workersKeys.has(key)) throw codedError(ErrorCodes.INVALID_OPTION, `unknown option 'workers.${key}'`, { option: `workers.${key}` });
  }
  checkInteger('workers.count', options.count, 1, 1024);
  let moduleUrl: string;
  if (options.module instanceof URL) moduleUrl = options.module.href;
  else if (typeof options.module === 'string' && options.module.length > 0) {
    moduleUrl = /^file:/.test(options.module) ? options.module : pathToFileURL(path.resolve(options.module)).href;
  } else throw codedError(ErrorCodes.INVALID_OPTION, 'workers.module must be a path or a file: URL');
  if (options.execArgv !== undefined && (!Array.isArray(options.execArgv) || options.execArgv.some((a) => typeof a !== 'string'))) {
    throw codedError(ErrorCodes.INVALID_OPTION, 'workers.execArgv must be an array of strings');
  }
  try {
    structuredClone(options.workerData);
  } catch (error) {
    throw codedError(ErrorCodes.INVALID_OPTION, `workers.workerData cannot be passed to a worker: ${(error as Error).message}`);
  }
  return {
    count: options.count ?? os.availableParallelism(),
    moduleUrl,
    ...(options.resourceLimits !== undefined ? { resourceLimits: options.resourceLimits } : {}),
    ...(options.env !== undefined ? { env: options.env } : {}),
    ...(options.execArgv !== undefined ? { execArgv: options.execArgv } : {}),
    ...(options.workerData !== undefined ? { workerData: options.workerData } : {}),
  };
}
