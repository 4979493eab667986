// Where to listen: the original's rule is "resolve with passive hints, take the first IPv6
// result, else the first IPv4 one", so a wildcard listener is `::` (dual-stack) wherever the
// machine has IPv6.
import dns from 'node:dns/promises';
import net from 'node:net';
import type { NativeBinding, ResolvedAddress, ResolveFailure } from './native/binding.js';
import { codedError, ErrorCodes } from './errors.js';

export function pickListenAddress(candidates: readonly ResolvedAddress[]): ResolvedAddress | undefined {
  return candidates.find((candidate) => candidate.family === 6) ?? candidates.find((candidate) => candidate.family === 4);
}

function isResolveFailure(value: unknown): value is ResolveFailure {
  return typeof value === 'object' && value !== null && 'gaiError' in value;
}

function parseNumericPort(port: number | string): number | undefined {
  const value = typeof port === 'number' ? port : /^\d+$/.test(port) ? Number(port) : Number.NaN;
  return Number.isInteger(value) && value >= 0 && value <= 65535 ? value : undefined;
}

/**
 * Resolves `host` (undefined = wildcard) and `port` (a number or a service name such as
 * 'https') with getaddrinfo's passive hints. Uses the addon's resolver (off the event loop)
 * when there is one; without it, Node's dns.lookup, which knows no service names.
 */
export async function resolveListenAddress(
  host: string | undefined,
  port: number | string,
  binding: NativeBinding | null,
): Promise<ResolvedAddress> {
  const numericPort = parseNumericPort(port);
  if (numericPort === undefined && (typeof port === 'number' || port === '')) {
    throw codedError(ErrorCodes.INVALID_OPTION, `port must be 0..65535 or a service name, got ${String(port)}`);
  }
  let candidates: ResolvedAddress[];
  if (binding) {
    try {
      candidates = await binding.resolvePassive(host ?? null, String(port));
    } catch (failure) {
      const reason = isResolveFailure(failure) ? failure.message : String(failure);
      throw codedError(ErrorCodes.RESOLVE_FAILED, `cannot resolve ${host ?? '(wildcard)'} port ${String(port)}: ${reason}`, {
        host,
        port,
      });
    }
  } else {
    if (numericPort === undefined) {
      throw codedError(
        ErrorCodes.RESOLVE_FAILED,
        `port ${String(port)} is a service name, which only the native backend's resolver understands`,
      );
    }
    candidates = await jsPassiveCandidates(host, numericPort);
  }
  const chosen = pickListenAddress(candidates);
  if (!chosen) {
    throw codedError(ErrorCodes.RESOLVE_FAILED, `no IPv4 or IPv6 address for ${host ?? '(wildcard)'}`, { host, port });
  }
  return chosen;
}

async function jsPassiveCandidates(host: string | undefined, port: number): Promise<ResolvedAddress[]> {
  if (host === undefined) {
    // getaddrinfo(NULL, AI_PASSIVE) offers `::` only where IPv6 is configured.
    const ipv6 = await canBindIPv6();
    return [...(ipv6 ? [{ family: 6 as const, address: '::', port }] : []), { family: 4, address: '0.0.0.0', port }];
  }
  if (net.isIP(host)) return [{ family: net.isIP(host) === 6 ? 6 : 4, address: host, port }];
  try {
    const found = await dns.lookup(host, { all: true });
    return found.map((entry) => ({ family: entry.family === 6 ? 6 : 4, address: entry.address, port }));
  } catch (error) {
    throw codedError(ErrorCodes.RESOLVE_FAILED, `cannot resolve ${host}: ${(error as Error).message}`, { host, port });
  }
}

function canBindIPv6(): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ host: '::1', port: 0 }, () => probe.close(() => resolve(true)));
  });
}
