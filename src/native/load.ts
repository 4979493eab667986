// Finds and loads the addon once. Every path tried and every reason it failed is kept, so
// an explicit `backend: 'native'` that cannot be served says exactly why.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { NativeBinding } from './binding.js';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Where node-gyp (default) and cmake-js (`npm run build:cmake`) put the addon. */
export const candidatePaths: readonly string[] = [
  path.join(packageRoot, 'build', 'Release', 'native_acceptor.node'),
  path.join(packageRoot, 'build', 'Debug', 'native_acceptor.node'),
  path.join(packageRoot, 'build-cmake', 'Release', 'native_acceptor.node'),
  path.join(packageRoot, 'build-cmake', 'native_acceptor.node'),
];

export interface LoadResult {
  binding: NativeBinding | null;
  /** "path: reason" for every candidate that did not load */
  failures: string[];
}

let cached: LoadResult | null = null;

function isNativeBinding(value: unknown): value is NativeBinding {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return (
    typeof candidate.Acceptor === 'function' &&
    typeof candidate.openListenSocket === 'function' &&
    typeof candidate.prepareAdoptedSocket === 'function' &&
    typeof candidate.resolvePassive === 'function'
  );
}

export function loadNativeBinding(): LoadResult {
  if (cached) return cached;
  const failures: string[] = [];
  if (process.platform === 'win32') {
    failures.push(`the native acceptor supports Linux and macOS, not ${process.platform}`);
    cached = { binding: null, failures };
    return cached;
  }
  const require = createRequire(import.meta.url);
  for (const candidate of candidatePaths) {
    try {
      const loaded: unknown = require(candidate);
      if (isNativeBinding(loaded)) {
        cached = { binding: loaded, failures };
        return cached;
      }
      failures.push(`${candidate}: loaded, but it is not this package's addon`);
    } catch (error) {
      const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
      failures.push(`${candidate}: ${reason}`);
    }
  }
  cached = { binding: null, failures };
  return cached;
}
