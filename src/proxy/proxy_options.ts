// The PROXY protocol options both listeners take, and their checks.
import { codedError, ErrorCodes } from '../errors.js';
import type { ProxyProtocolMode } from './proxy_header_accumulator.js';
import { TrustedProxies } from './trusted_proxies.js';

export interface ProxyProtocolOptions {
  /**
   * Expect a PROXY protocol header (HAProxy's, version 1, 2 or either) before anything else on
   * every connection, and take the client's address from it (off by default).
   */
  proxyProtocol?: ProxyProtocolMode;
  /** The load balancers allowed to send it: addresses and CIDR ranges, IPv4 and IPv6. Required with proxyProtocol. */
  trustedProxies?: string[];
}

const MODES: readonly string[] = ['v1', 'v2', 'any'];

/** The checked settings, or undefined when the PROXY protocol is off. */
export function proxyProtocolSettings(options: ProxyProtocolOptions): { mode: ProxyProtocolMode; trusted: TrustedProxies } | undefined {
  const { proxyProtocol, trustedProxies } = options;
  if (proxyProtocol === undefined) {
    if (trustedProxies !== undefined) throw codedError(ErrorCodes.INVALID_OPTION, 'trustedProxies is only meaningful with proxyProtocol');
    return undefined;
  }
  if (typeof proxyProtocol !== 'string' || !MODES.includes(proxyProtocol)) {
    throw codedError(ErrorCodes.INVALID_OPTION, "proxyProtocol must be 'v1', 'v2' or 'any'");
  }
  return { mode: proxyProtocol, trusted: new TrustedProxies(trustedProxies) };
}
