// Every error this package hands to users carries a `code` from this table; errors of system
// calls also carry `errno` and `syscall`, built the way Node's own net.js builds them.
import os from 'node:os';
import util from 'node:util';

export const ErrorCodes = {
  NATIVE_UNAVAILABLE: 'ERR_NATIVE_UNAVAILABLE',
  INVALID_OPTION: 'ERR_INVALID_OPTION',
  INVALID_CREDENTIAL: 'ERR_INVALID_CREDENTIAL',
  CREDENTIAL_TOO_LARGE: 'ERR_CREDENTIAL_TOO_LARGE',
  RESOLVE_FAILED: 'ERR_RESOLVE_FAILED',
  LISTENER_CLOSED: 'ERR_LISTENER_CLOSED',
  TLS_HANDSHAKE_TIMEOUT: 'ERR_TLS_HANDSHAKE_TIMEOUT',
  /**
   * No longer produced: a ClientHello read in JS that does not parse goes to OpenSSL, which
   * answers it and reports Node's ERR_SSL_* code. Kept so that code naming it still compiles.
   */
  TLS_CLIENT_HELLO_INVALID: 'ERR_TLS_CLIENT_HELLO_INVALID',
  CLIENT_CERT_REJECTED: 'ERR_CLIENT_CERT_REJECTED',
  CONNECTION_SETUP_FAILED: 'ERR_CONNECTION_SETUP_FAILED',
  CLIENT_CLOSED: 'ERR_CLIENT_CLOSED',
  HANDLER_FAILED: 'ERR_HANDLER_FAILED',
  IDLE_TIMEOUT: 'ERR_IDLE_TIMEOUT',
  NATIVE_REQUIRED: 'ERR_NATIVE_REQUIRED',
  WORKER_FAILED: 'ERR_WORKER_FAILED',
  PROXY_PROTOCOL_INVALID: 'ERR_PROXY_PROTOCOL_INVALID',
  PROXY_PROTOCOL_UNTRUSTED: 'ERR_PROXY_PROTOCOL_UNTRUSTED',
  PER_ADDRESS_LIMIT: 'ERR_PER_ADDRESS_LIMIT',
  ADDRESS_TABLE_FULL: 'ERR_ADDRESS_TABLE_FULL',
  INVALID_LISTEN_FDS: 'ERR_INVALID_LISTEN_FDS',
  UPGRADE_FAILED: 'ERR_UPGRADE_FAILED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface CodedError extends Error {
  code: string;
}

export function codedError(code: ErrorCode, message: string, extra: Record<string, unknown> = {}): CodedError {
  const error = new Error(message) as CodedError;
  error.code = code;
  Object.assign(error, extra);
  return error;
}

export interface SystemError extends CodedError {
  errno: number;
  syscall: string;
  address?: string;
  port?: number;
}

// The accept(2) retry set has two names for one number on Linux (EOPNOTSUPP/ENOTSUP,
// EAGAIN/EWOULDBLOCK); report the name the policy and its docs use.
const preferredNames = ['EOPNOTSUPP', 'EAGAIN'];

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(os.constants.errno)) {
  if (!errnoNames.has(value) || preferredNames.includes(name)) errnoNames.set(value, name);
}

/** The symbolic name of a positive errno on this platform ('EMFILE'), or 'E<number>'. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? util.getSystemErrorMap().get(-errno)?.[0] ?? `E${errno}`;
}

function describeErrno(errno: number): string {
  try {
    // util.getSystemErrorMap is keyed by libuv's negative codes, which are -errno on Unix.
    return util.getSystemErrorMap().get(-errno)?.[1] ?? 'unknown error';
  } catch {
    return 'unknown error';
  }
}

export function systemError(errno: number, syscall: string, where?: { address?: string; port?: number }): SystemError {
  const code = errnoName(errno);
  const place = where?.address !== undefined ? ` ${where.address}${where.port !== undefined ? `:${where.port}` : ''}` : '';
  const error = new Error(`${syscall} ${code}${place}: ${describeErrno(errno)}`) as SystemError;
  error.code = code;
  error.errno = errno;
  error.syscall = syscall;
  if (where?.address !== undefined) error.address = where.address;
  if (where?.port !== undefined) error.port = where.port;
  return error;
}
