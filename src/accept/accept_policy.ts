// The errno policy of accept(), by name, for what only JS sees (net.Server's accept errors).
// The native acceptor applies the same table in native/accept_errors.cc.

/** The original's retry set: network errors of the pending connection (accept(2)). */
export const RETRY_CODES: ReadonlySet<string> = new Set([
  'ECONNABORTED',
  'ENETDOWN',
  'EPROTO',
  'ENOPROTOOPT',
  'EHOSTDOWN',
  'ENONET',
  'EHOSTUNREACH',
  'EOPNOTSUPP',
  'ENOTSUP',
  'ENETUNREACH',
]);

/** Out of descriptors or kernel memory: the original dies here; this package backs off. */
export const PAUSE_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

export type AcceptErrorAction = 'retry' | 'pause' | 'fatal';

export function classifyAcceptError(code: string): AcceptErrorAction {
  if (RETRY_CODES.has(code)) return 'retry';
  if (PAUSE_CODES.has(code)) return 'pause';
  return 'fatal';
}
