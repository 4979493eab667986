// Why the server could not start, in one line for the user: the file or the address, and the
// problem. Every such failure ends the CLI with status 1.
import { flagOfOption } from './production_flags.js';

export const EXIT_FAILURE = 1;

/** A start-up failure whose message is already written for the user. */
export class StartupError extends Error {
  override name = 'StartupError';
}

interface MaybeSystemError {
  code?: unknown;
  syscall?: unknown;
  address?: unknown;
  port?: unknown;
  message?: unknown;
  /** ERR_INVALID_OPTION: the listener option refused. */
  option?: unknown;
}

const REASONS: Record<string, string> = {
  EADDRINUSE: 'the address is already in use',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the address is not available on this machine',
  EPERM: 'operation not permitted',
};

function hostPort(address: string, port: unknown): string {
  const host = address.includes(':') ? `[${address}]` : address;
  return typeof port === 'number' ? `${host}:${port}` : host;
}

/**
 * The message for a failure while starting. `where` is the address the user asked for, used
 * when the error does not carry one.
 */
export function describeStartupFailure(error: unknown, where: { host: string; port: number }): string {
  if (error instanceof StartupError) return error.message;
  const failure = (typeof error === 'object' && error !== null ? error : {}) as MaybeSystemError;
  const code = typeof failure.code === 'string' ? failure.code : undefined;
  const message = typeof failure.message === 'string' ? failure.message : String(error);
  if (code !== undefined && failure.syscall !== undefined) {
    const address = typeof failure.address === 'string' ? hostPort(failure.address, failure.port) : hostPort(where.host, where.port);
    return `cannot listen on ${address}: ${REASONS[code] ?? message} (${code})`;
  }
  switch (code) {
    case 'ERR_INVALID_CREDENTIAL':
      // The message already starts with the file name.
      return `invalid certificate or key: ${message}`;
    case 'ERR_RESOLVE_FAILED':
      // The message names the host and the resolver's answer.
      return message;
    case 'ERR_NATIVE_UNAVAILABLE':
      return `${message}\n(on the command line: --backend js)`;
    case 'ERR_INVALID_OPTION': {
      // An option the listener refuses in this combination (with --workers, say): name the flag.
      const flag = flagOfOption(failure.option);
      return flag !== undefined ? `${flag}: ${message} (${code})` : `${message} (${code})`;
    }
    default:
      return code !== undefined ? `${message} (${code})` : message;
  }
}
