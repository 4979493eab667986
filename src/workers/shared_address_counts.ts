// maxConnectionsPerAddress behind a PROXY balancer, with workers: each worker reads its
// connections' headers, but the count of a client is the listener's, in the addon's table the
// accept thread would use (native/address_counts.h), through this worker's queue. The queue
// records the slots it counted in, so a worker that dies has its clients counted out with it.
import type { ClientAddressCounts } from '../proxy/client_address_limit.js';
import type { AddressRejection } from '../accept/address_counts.js';
import { ADDRESS_OVER_LIMIT, ADDRESS_TABLE_FULL } from './dispatch_binding.js';
import type { QueueAcceptBackend } from './queue_backend.js';

export class SharedAddressCounts implements ClientAddressCounts {
  /** The queue, once the worker's listener has opened it (no header is read before). */
  constructor(private readonly queue: () => QueueAcceptBackend | null) {}

  /** The limit, the IPv6 prefix and the table's size are the listener's, which the addon has. */
  admit(key: string): (() => void) | AddressRejection {
    const queue = this.queue();
    if (!queue) return () => undefined;
    const slot = queue.admitClient(key);
    if (slot === ADDRESS_OVER_LIMIT) return 'maxConnectionsPerAddress';
    if (slot === ADDRESS_TABLE_FULL) return 'addressTableFull';
    // Not counted (not an address the addon parses): nothing to count out.
    if (slot < 0) return () => undefined;
    return () => queue.releaseAddress(slot);
  }
}
