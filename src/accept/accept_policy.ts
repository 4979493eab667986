// The errno policy of accept(), by name, for what only JS sees (net.Server's accept errors).
// The native acceptor applies the same table in native/accept_errors.cc.

/**
 * Errors of one pending connection, retried: the original's set (the network errors
 * accept(2) says to treat like EAGAIN), then what else accept(2) lists for a pending
 * connection (EPERM: a firewall rule or security module refused it), which the original
 * would let stop the server.
 */
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
  'EPERM',
  'ETIMEDOUT',
  'ENOSR',
  'ESOCKTNOSUPPORT',
  'EPROTONOSUPPORT',
]);

/** Out of descriptors or kernel memory: the original dies here; this package backs off. */
export const PAUSE_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM']);

export type AcceptErrorAction = 'retry' | 'pause' | 'fatal';

/** Anything else means the listening socket itself is unusable (EBADF, EINVAL, ENOTSOCK, EFAULT, ...). */
export function classifyAcceptError(code: string): AcceptErrorAction {
  if (RETRY_CODES.has(code)) return 'retry';
  if (PAUSE_CODES.has(code)) return 'pause';
  return 'fatal';
}
