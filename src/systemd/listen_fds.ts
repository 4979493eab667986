// Sockets a service manager passed in (systemd socket activation), read the way sd_listen_fds(3)
// reads them: LISTEN_PID must be this process (the variables may have been inherited by a
// child that is not meant to take them), LISTEN_FDS descriptors start at 3, LISTEN_FDNAMES
// names them (FileDescriptorName=). The variables are then removed, so processes this one
// starts do not take the same descriptors.
import fs from 'node:fs';
import { codedError, ErrorCodes } from '../errors.js';

/** The first passed descriptor; the others follow it (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

export interface ActivatedSocket {
  fd: number;
  /** From LISTEN_FDNAMES; 'unknown' when the manager named none, as sd_listen_fds_with_names says. */
  name: string;
}

export interface ListenFdsOptions {
  /** Remove LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from `env` (default true). */
  unsetEnvironment?: boolean;
  /** Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The process the descriptors must be meant for; default process.pid. */
  pid?: number;
}

const VARIABLES = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const;

function positiveInteger(name: string, text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) {
    throw codedError(ErrorCodes.INVALID_LISTEN_FDS, `${name} must be a whole number, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** The descriptors this process has open, from /dev/fd (Linux: /proc/self/fd; also macOS and the BSDs). */
function openDescriptors(): Set<number> | undefined {
  try {
    return new Set(fs.readdirSync('/dev/fd').map(Number));
  } catch {
    return undefined;
  }
}

/**
 * A count the manager cannot have passed fails here, before anything is built from it:
 * every descriptor from 3 to 3 + count - 1 must be open. The check is bounded by the
 * descriptors the process has (not by the count), so LISTEN_FDS=2147483000 is refused at once
 * instead of building two billion entries, and the message stays one short line.
 */
function checkOpen(count: number): void {
  const open = openDescriptors();
  if (open === undefined) {
    // No /dev/fd: fstat the last one, which the lowest-first allocation makes the likeliest to be missing.
    if (count === 0) return;
    const last = LISTEN_FDS_START + count - 1;
    let isOpen = Number.isSafeInteger(last) && last <= 2 ** 31 - 1;
    if (isOpen) {
      try {
        fs.fstatSync(last);
      } catch {
        isOpen = false;
      }
    }
    if (!isOpen) throw codedError(ErrorCodes.INVALID_LISTEN_FDS, `LISTEN_FDS says ${count} descriptors, but fd ${last} is not open`);
    return;
  }
  if (count > open.size) {
    throw codedError(ErrorCodes.INVALID_LISTEN_FDS, `LISTEN_FDS says ${count} descriptors, more than the ${open.size} this process has open`);
  }
  for (let fd = LISTEN_FDS_START; fd < LISTEN_FDS_START + count; fd++) {
    if (!open.has(fd)) throw codedError(ErrorCodes.INVALID_LISTEN_FDS, `LISTEN_FDS says ${count} descriptors from fd ${LISTEN_FDS_START}, but fd ${fd} is not open`);
  }
}

function read(env: NodeJS.ProcessEnv, pid: number): ActivatedSocket[] {
  const listenPid = env.LISTEN_PID;
  const listenFds = env.LISTEN_FDS;
  if (listenPid === undefined || listenFds === undefined) return [];
  if (positiveInteger('LISTEN_PID', listenPid) !== pid) return [];
  const count = positiveInteger('LISTEN_FDS', listenFds);
  checkOpen(count);
  const names = env.LISTEN_FDNAMES !== undefined ? env.LISTEN_FDNAMES.split(':') : undefined;
  if (names !== undefined && names.length !== count) {
    throw codedError(ErrorCodes.INVALID_LISTEN_FDS, `LISTEN_FDNAMES names ${names.length} descriptor(s), LISTEN_FDS says ${count}`);
  }
  return Array.from({ length: count }, (_, index) => ({ fd: LISTEN_FDS_START + index, name: names?.[index] ?? 'unknown' }));
}

/**
 * The sockets passed to this process, [] when none were (or they were meant for another
 * process). Throws ERR_INVALID_LISTEN_FDS for variables that do not parse; the variables are
 * removed either way (unless `unsetEnvironment` is false), as sd_listen_fds does.
 */
export function systemdListenFds(options: ListenFdsOptions = {}): ActivatedSocket[] {
  const env = options.env ?? process.env;
  try {
    return read(env, options.pid ?? process.pid);
  } finally {
    if (options.unsetEnvironment !== false) for (const name of VARIABLES) delete env[name];
  }
}
