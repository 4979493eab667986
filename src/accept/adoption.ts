// Adopting a listening descriptor: the errors both backends give for one they cannot take.
// Only TCP is taken (AF_INET, AF_INET6): the listener's addresses (address(), remoteAddress)
// assume IP, as would per-address limits or the PROXY protocol, so a Unix-domain socket is
// refused before anything accepts on it.
import os from 'node:os';
import { systemError } from '../errors.js';
import type { SystemError } from '../errors.js';

/** AF_UNIX is 1 on Linux and macOS; other non-IP families are rare enough to show as numbers. */
function familyName(family: number | undefined): string {
  if (family === 1) return 'a Unix-domain (AF_UNIX)';
  return family === undefined ? 'a non-IP' : `an address family ${family}`;
}

/** EAFNOSUPPORT from getsockname, saying which descriptor and what it is. */
export function unsupportedFamilyError(fd: number, family?: number): SystemError {
  const error = systemError(os.constants.errno.EAFNOSUPPORT, 'getsockname');
  error.message = `fd ${fd} is ${familyName(family)} socket; only TCP (AF_INET/AF_INET6) listening sockets can be adopted (${error.message})`;
  return error;
}

/** The error for what prepareAdoptedSocket refused (the descriptor stays the caller's). */
export function adoptionError(fd: number, refused: { errno: number; syscall: string; family?: number }): SystemError {
  if (refused.errno === os.constants.errno.EAFNOSUPPORT) return unsupportedFamilyError(fd, refused.family);
  return systemError(refused.errno, refused.syscall);
}
