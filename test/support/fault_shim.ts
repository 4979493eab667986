// Builds test/fixtures/accept_fault_shim.c, the LD_PRELOAD library that fails accept() and
// accept4() on schedule, and turns errno names into the schedule it reads.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sourceFixture } from './paths.js';

const execFileAsync = promisify(execFile);

/**
 * errno numbers of Linux (asm-generic/errno.h). os.constants.errno leaves out a few that
 * accept(2) documents (EHOSTDOWN, ENONET), so the table is spelled out here.
 */
export const LINUX_ERRNO = {
  EPERM: 1,
  EINTR: 4,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOSR: 63,
  ENONET: 64,
  EPROTO: 71,
  ENOPROTOOPT: 92,
  EPROTONOSUPPORT: 93,
  ESOCKTNOSUPPORT: 94,
  EOPNOTSUPP: 95,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ECONNABORTED: 103,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
  EHOSTDOWN: 112,
  EHOSTUNREACH: 113,
} as const;

export type ErrnoName = keyof typeof LINUX_ERRNO;

/** A schedule entry: an errno name, or 'pass' to let that accept call through. */
export type Fault = ErrnoName | 'pass';

/** A fault that lasts: every accept call that would find a connection fails while `whileExists` exists. */
export interface PersistentFault {
  errno: ErrnoName;
  whileExists: string;
}

/**
 * The environment that makes a child's accept calls fail as scheduled, then (with
 * `persistent`) fail for as long as a file exists, so a test decides when the fault ends.
 * The shim joins the end of any LD_PRELOAD this process already has: the sanitizer run
 * (scripts/test-sanitize.sh) preloads the ASan and UBSan runtimes, which must stay first in the
 * list, and ASan's accept4 interceptor then calls on into the shim.
 */
export function faultEnvironment(
  shim: string,
  faults: readonly Fault[],
  persistent?: PersistentFault,
): Record<string, string> {
  const inherited = process.env.LD_PRELOAD?.trim();
  return {
    LD_PRELOAD: inherited ? `${inherited} ${shim}` : shim,
    NTL_ACCEPT_FAULTS: faults.map((fault) => (fault === 'pass' ? 0 : LINUX_ERRNO[fault])).join(','),
    NTL_ACCEPT_FAULTS_TRACE: '1',
    ...(persistent ? { NTL_ACCEPT_FAULT_WHILE: `${LINUX_ERRNO[persistent.errno]}:${persistent.whileExists}` } : {}),
  };
}

export interface BuiltShim {
  path: string;
  /** Synchronous, so it can run from process.on('exit'). */
  removeSync(): void;
}

/** Compiles the shim into a fresh temporary directory; null when there is no C compiler. */
export async function buildAcceptFaultShim(): Promise<BuiltShim | null> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ntl-accept-shim-'));
  const output = path.join(dir, 'accept_fault_shim.so');
  try {
    const source = sourceFixture('accept_fault_shim.c');
    const flags = ['-shared', '-fPIC', '-O2', '-Wall', '-o', output, source, '-ldl', '-lpthread'];
    await execFileAsync('cc', flags, { timeout: 60_000 });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  return { path: output, removeSync: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The original's retry set: network errors of the pending connection (accept(2)). */
export const ORIGINAL_RETRY_SET: readonly ErrnoName[] = [
  'ECONNABORTED',
  'ENETDOWN',
  'EPROTO',
  'ENOPROTOOPT',
  'EHOSTDOWN',
  'ENONET',
  'EHOSTUNREACH',
  'EOPNOTSUPP',
  'ENETUNREACH',
];
