// Puts the PROXY protocol stage in front of a listener's setup when its options ask for it.
import type net from 'node:net';
import type { ConnectionSetup } from '../connection_lifecycle.js';
import type { ErrorCode } from '../errors.js';
import { proxyProtocolSettings } from './proxy_options.js';
import type { ProxyProtocolOptions } from './proxy_options.js';
import { ProxyProtocolSetup } from './proxy_setup.js';
import type { ProxiedInfo } from './proxy_setup.js';
import { ClientAddressLimit } from './client_address_limit.js';
import type { ClientAddressCounts } from './client_address_limit.js';
import { addressTableCapacity } from '../accept/address_counts.js';
import { DEFAULT_IPV6_PREFIX } from '../accept/address_key.js';

export function behindProxy<S extends net.Socket, I extends { id: number } & ProxiedInfo>(
  setup: ConnectionSetup<S, I>,
  options: ProxyProtocolOptions & { maxConnectionsPerAddress?: number; perAddressIPv6Prefix?: number; maxConnections?: number },
  timeoutMs: number,
  timeoutCode: ErrorCode,
  /** Where the per-address counts live (a listener served by workers shares one table). */
  addressCounts?: ClientAddressCounts,
  /** This thread's table size when `addressCounts` is absent (acceptorOptions.addressTableSize). */
  addressTableSize?: number,
): ConnectionSetup<S, I> {
  // Not an object: the listener's own validation reports it.
  if (typeof options !== 'object' || options === null) return setup;
  const settings = proxyProtocolSettings(options);
  if (settings === undefined) return setup;
  // The listener leaves the per-address count to this stage (admissionOptionsOf in listener.ts).
  const { maxConnectionsPerAddress: limit, perAddressIPv6Prefix, maxConnections } = options;
  const addressLimit =
    typeof limit === 'number'
      ? {
          addressLimit: new ClientAddressLimit(limit, perAddressIPv6Prefix ?? DEFAULT_IPV6_PREFIX, addressCounts, addressTableSize ?? addressTableCapacity(maxConnections)),
        }
      : {};
  return new ProxyProtocolSetup(setup, { ...settings, timeoutMs, timeoutCode, ...addressLimit });
}
