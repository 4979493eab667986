// Unknown option keys are an error: `{ sniCredentials: ... }` would otherwise be ignored in
// silence and the listener would serve every client with the primary credential. Each list is
// a Record over its options interface, so an option added to the interface and not here (or
// listed here and gone from the interface) fails to compile.
import { codedError, ErrorCodes } from './errors.js';
import type { BaseListenerOptions, CloseOptions } from './listener.js';
import type { ListenerOptions } from './tls/tls_listener.js';

const baseOptionKeys: Record<keyof BaseListenerOptions, true> = {
  port: true,
  host: true,
  fd: true,
  backlog: true,
  backend: true,
  gracefulCloseTimeout: true,
  idleTimeout: true,
  workers: true,
  proxyProtocol: true,
  trustedProxies: true,
  maxConnections: true,
  maxConnectionsPerAddress: true,
  perAddressIPv6Prefix: true,
  maxQueuedConnections: true,
  deferAccept: true,
};

const tlsOptionKeys: Record<keyof ListenerOptions, true> = {
  ...baseOptionKeys,
  credential: true,
  sniCredential: true,
  alpn: true,
  requestClientCert: true,
  handshakeTimeout: true,
  logTLSErrors: true,
  http: true,
  maxPendingHandshakes: true,
};

const closeOptionKeys: Record<keyof CloseOptions, true> = {
  gracefulTimeout: true,
};

/** The options each call accepts, by the name users know it by. */
export const KnownOptions = {
  createListener: Object.keys(tlsOptionKeys),
  createLocalTCPListener: Object.keys(baseOptionKeys),
  close: Object.keys(closeOptionKeys),
} as const;

export type OptionsOf = keyof typeof KnownOptions;

/**
 * Throws ERR_INVALID_OPTION for the first key of `options` that `call` does not know, naming
 * the closest known key when one is near enough to be a typo. Anything but a plain object is
 * left to the caller's own validation.
 */
export function rejectUnknownOptions(call: OptionsOf, options: unknown): void {
  if (typeof options !== 'object' || options === null) return;
  const known: readonly string[] = KnownOptions[call];
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const suggestion = closestKey(key, known);
    throw codedError(
      ErrorCodes.INVALID_OPTION,
      `unknown option '${key}' for ${call}()${suggestion !== undefined ? ` (did you mean ${suggestion}?)` : ''}`,
      { option: key, ...(suggestion !== undefined ? { suggestion } : {}) },
    );
  }
}

/** The known key nearest to `key` by edit distance (case ignored), if near enough to be a typo. */
function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (best === undefined || distance < best.distance) best = { key: candidate, distance };
  }
  // A third of the name may be wrong (sniCredentials, gracefullTimeout, idleTimout), not more:
  // 'foo' should not become "did you mean fd?".
  const allowed = Math.max(1, Math.floor(key.length / 3));
  if (best !== undefined && best.distance <= allowed) return best.key;
  // A known name shortened to its first word or two (close({ graceful }), { sni }): the one
  // known key it begins, when exactly one does and the key is long enough to mean something.
  if (key.length < 3) return undefined;
  const lower = key.toLowerCase();
  const extended = known.filter((candidate) => candidate.toLowerCase().startsWith(lower));
  return extended.length === 1 ? extended[0] : undefined;
}

/** Levenshtein distance: insertions, deletions and substitutions, one each. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
