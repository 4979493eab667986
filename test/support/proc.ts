// What the kernel says about descriptors, sockets and CPU time, read from /proc (Linux).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

type Pid = number | 'self';

/** Every open descriptor of a process and what it points to ('socket:[123]', '/dev/null', ...). */
export function descriptors(pid: Pid = 'self'): Map<number, string> {
  const table = new Map<number, string>();
  for (const name of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      table.set(Number(name), fs.readlinkSync(`/proc/${pid}/fd/${name}`));
    } catch {
      // closed between readdir and readlink (e.g. the directory handle readdir itself used)
    }
  }
  return table;
}

export function descriptorCount(pid: Pid = 'self'): number {
  return descriptors(pid).size;
}

const socketLink = /^socket:\[(\d+)\]$/;

/** The socket inode a descriptor points to, or undefined when it is not a socket. */
export function socketInode(fd: number, pid: Pid = 'self'): number | undefined {
  try {
    const match = socketLink.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
    return match?.[1] !== undefined ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Inodes of every socket a process holds. */
export function socketInodes(pid: Pid = 'self'): Set<number> {
  return parseSocketLinks([...descriptors(pid).values()]);
}

export function parseSocketLinks(links: Iterable<string>): Set<number> {
  const inodes = new Set<number>();
  for (const link of links) {
    const match = socketLink.exec(link.trim());
    if (match?.[1] !== undefined) inodes.add(Number(match[1]));
  }
  return inodes;
}

const TCP_LISTEN = '0A';

/** The inode of the socket listening on `port` (IPv4 or IPv6), from /proc/net/tcp{,6}. */
export function listeningSocketInode(port: number): number | undefined {
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      const state = fields[3];
      const inode = fields[9];
      if (local === undefined || state !== TCP_LISTEN || inode === undefined) continue;
      const localPort = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
      if (localPort === port) return Number(inode);
    }
  }
  return undefined;
}

/** The fd flags line of /proc/<pid>/fdinfo/<fd> as a number (octal in the file). */
export function descriptorFlags(fd: number, pid: Pid = 'self'): number {
  const info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
  const match = /^flags:\s+([0-7]+)$/m.exec(info);
  if (match?.[1] === undefined) throw new Error(`no flags in /proc/${pid}/fdinfo/${fd}`);
  return parseInt(match[1], 8);
}

/** O_CLOEXEC as /proc/<pid>/fdinfo reports it on Linux (octal 02000000). */
export const O_CLOEXEC = 0o2000000;

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU time a process has used so far, in milliseconds. */
export function cpuTimeMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name, field 3 (state) is index 0, so utime (14) is index 11 and stime (15) is 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / ticksPerSecond();
}
