// Finds and loads the addon once. Every path tried and every reason it failed is kept, so
// an explicit `backend: 'native'` that cannot be served says exactly why.
//
// node-gyp-build picks first, the way it does for bufferutil or better-sqlite3: a build from
// source (build/Release, build/Debug), else the prebuild in prebuilds/<platform>-<arch>/
// that fits this system (the tarball ships them; see scripts/prebuild.mjs). It also honours
// NATIVE_TLS_LISTENER_PREBUILD (a directory to look in instead of the package's own). If what
// it picks does not load, every other place an addon can be is tried, cmake-js's included.
// NATIVE_TLS_LISTENER_ADDON names one addon file to load instead of all of that.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { NativeBinding } from './binding.js';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const require = createRequire(import.meta.url);

/** The part of node-gyp-build used here (it ships no types). */
interface NodeGypBuild {
  /** The addon file to load from a package directory; throws when none fits. */
  resolve(dir: string): string;
}

/** Where the prebuilds for this platform and architecture are, when the tarball has any. */
const prebuildDir = path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`);

/**
 * Where an addon can be, besides node-gyp-build's pick: node-gyp's builds, this platform's
 * prebuilds, and cmake-js's builds (`npm run build:cmake`).
 */
export const candidatePaths: readonly string[] = [
  path.join(packageRoot, 'build', 'Release', 'native_acceptor.node'),
  path.join(packageRoot, 'build', 'Debug', 'native_acceptor.node'),
  ...prebuildFiles(),
  path.join(packageRoot, 'build-cmake', 'Release', 'native_acceptor.node'),
  path.join(packageRoot, 'build-cmake', 'native_acceptor.node'),
];

function prebuildFiles(): string[] {
  try {
    return fs
      .readdirSync(prebuildDir)
      .filter((name) => name.endsWith('.node'))
      .map((name) => path.join(prebuildDir, name));
  } catch {
    return [];
  }
}

/**
 * Names the one addon file to load (relative paths from the working directory). Exclusive: when
 * it does not load, nothing else is tried, so a run meant for a special build (the sanitizer
 * run loads build-sanitize/) can never pass on the normal one. An environment variable, so child
 * processes and worker threads load the same file.
 */
export const ADDON_PATH_VARIABLE = 'NATIVE_TLS_LISTENER_ADDON';

export interface LoadResult {
  binding: NativeBinding | null;
  /** the file the binding was loaded from; null when none loaded */
  path: string | null;
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
    typeof candidate.setDeferAccept === 'function' &&
    typeof candidate.resolvePassive === 'function'
  );
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}

/** node-gyp-build's choice, or null (with the reason recorded) when it finds none. */
function nodeGypBuildChoice(failures: string[]): string | null {
  try {
    return (require('node-gyp-build') as NodeGypBuild).resolve(packageRoot);
  } catch (error) {
    failures.push(`node-gyp-build in ${packageRoot}: ${firstLine(error)}`);
    return null;
  }
}

/** The files to try, in order: the one NATIVE_TLS_LISTENER_ADDON names, or every place an addon can be. */
function addonPaths(failures: string[]): readonly string[] {
  const named = process.env[ADDON_PATH_VARIABLE];
  if (named) return [path.resolve(named)];
  const chosen = nodeGypBuildChoice(failures);
  if (!candidatePaths.some((candidate) => candidate.startsWith(prebuildDir + path.sep))) {
    failures.push(`${prebuildDir}: no prebuild for ${process.platform}-${process.arch} in this package`);
  }
  return chosen === null ? candidatePaths : [chosen, ...candidatePaths.filter((candidate) => candidate !== chosen)];
}

export function loadNativeBinding(): LoadResult {
  if (cached) return cached;
  const failures: string[] = [];
  if (process.platform === 'win32') {
    failures.push(`the native acceptor supports Linux and macOS, not ${process.platform}`);
    cached = { binding: null, path: null, failures };
    return cached;
  }
  for (const candidate of addonPaths(failures)) {
    try {
      const loaded: unknown = require(candidate);
      if (isNativeBinding(loaded)) {
        cached = { binding: loaded, path: candidate, failures };
        return cached;
      }
      failures.push(`${candidate}: loaded, but it is not this package's addon`);
    } catch (error) {
      failures.push(`${candidate}: ${firstLine(error)}`);
    }
  }
  cached = { binding: null, path: null, failures };
  return cached;
}
