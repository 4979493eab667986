// maxConnectionsPerAddress in JS: the js backend's count of socket peers and, on one thread,
// the PROXY stage's count of header clients (src/proxy/client_address_limit.ts). The same
// table as native/address_counts.h: connections per key (src/accept/address_key.ts), at most
// `capacity` keys, a key dropped when its count returns to 0, and a new key refused when the
// table is full (failing open would let that many distinct addresses turn the limit off).
// A Map is a hash table with a seeded hash (V8's): O(1), no scan to reclaim entries.

/** Addresses one table holds at most (native/address_counts.h has the same cap). */
export const ADDRESS_TABLE_MAX = 65_536;

/** Why a connection was refused by its address. */
export type AddressRejection = 'maxConnectionsPerAddress' | 'addressTableFull';

/** Keys a table needs room for: never more addresses in use than connections. */
export function addressTableCapacity(maxConnections: number | undefined): number {
  return Math.min(maxConnections ?? ADDRESS_TABLE_MAX, ADDRESS_TABLE_MAX);
}

export class AddressCounts {
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly limit: number,
    private readonly capacity: number = ADDRESS_TABLE_MAX,
  ) {}

  /** Counts one connection from `key` in: how to count it out (once), or why it is refused. */
  admit(key: string): (() => void) | AddressRejection {
    const count = this.counts.get(key);
    if (count === undefined && this.counts.size >= this.capacity) return 'addressTableFull';
    if ((count ?? 0) >= this.limit) return 'maxConnectionsPerAddress';
    this.counts.set(key, (count ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.counts.get(key) ?? 1) - 1;
      if (left > 0) this.counts.set(key, left);
      else this.counts.delete(key);
    };
  }

  /** Addresses with at least one connection now. */
  get inUse(): number {
    return this.counts.size;
  }
}
