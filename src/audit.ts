// Cross-checks the registry against the process's real descriptors: what the registry thinks
// is open but is not, and connections of this listener that are open but tracked by no one.
// On Linux both come from /proc; elsewhere only the first can be checked (with fstat).
import fs from 'node:fs';

export interface AuditReport {
  /** Tracked connections whose descriptor is open, as expected. */
  tracked: number;
  /** Tracked connections whose descriptor is already closed. */
  closedButTracked: Array<{ id: number; fd: number }>;
  /** Descriptors of accepted connections on this listener's port that nobody tracks; null where unknowable. */
  untracked: number[] | null;
}

export interface TrackedDescriptor {
  id: number;
  fd: number | null;
}

function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** Socket inodes of TCP connections (not listeners) whose local port is `port`. */
function connectionInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
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
      // state 0A is LISTEN: the listening socket itself is not a connection.
      if (local?.endsWith(`:${portHex}`) && state !== '0A' && inode !== undefined && inode !== '0') inodes.add(inode);
    }
  }
  return inodes;
}

function untrackedOnLinux(port: number, trackedFds: ReadonlySet<number>): number[] | null {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc/self/fd');
  } catch {
    return null;
  }
  const ours = connectionInodes(port);
  const untracked: number[] = [];
  for (const entry of entries) {
    const fd = Number(entry);
    if (trackedFds.has(fd)) continue;
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${entry}`);
    } catch {
      continue; // closed while we looked (readdir's own descriptor, for one)
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode !== undefined && ours.has(inode)) untracked.push(fd);
  }
  return untracked.sort((a, b) => a - b);
}

export function auditDescriptors(tracked: Iterable<TrackedDescriptor>, port: number | null): AuditReport {
  const closedButTracked: Array<{ id: number; fd: number }> = [];
  const trackedFds = new Set<number>();
  let open = 0;
  for (const { id, fd } of tracked) {
    if (fd === null) continue;
    if (isOpen(fd)) {
      open++;
      trackedFds.add(fd);
    } else {
      closedButTracked.push({ id, fd });
    }
  }
  const untracked = process.platform === 'linux' && port !== null ? untrackedOnLinux(port, trackedFds) : null;
  return { tracked: open, closedButTracked, untracked };
}
