// Telling the service manager how the service is doing, as sd_notify(3) does: one datagram
// ('READY=1', 'STOPPING=1', ...) to the AF_UNIX socket NOTIFY_SOCKET names, only when it is
// set. Node has no AF_UNIX datagram sockets, so the addon sends it: without the addon there
// is no way to notify, and this throws ERR_NATIVE_UNAVAILABLE (a Type=notify unit then times
// out waiting for READY=1; use Type=exec, or build the addon).
import { loadNativeBinding } from '../native/load.js';
import { codedError, ErrorCodes, systemError } from '../errors.js';

/**
 * Sends `state` to NOTIFY_SOCKET. Returns false when NOTIFY_SOCKET is not set (nothing to
 * tell), true once sent. Throws a SystemError (`errno`, `syscall`: 'socket', 'sendto') when it
 * cannot be sent, ERR_INVALID_OPTION for a NOTIFY_SOCKET that is not a socket address, and
 * ERR_NATIVE_UNAVAILABLE without the addon.
 */
export function systemdNotify(state: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const address = env.NOTIFY_SOCKET;
  if (address === undefined || address === '') return false;
  const { binding, failures } = loadNativeBinding();
  if (binding === null) {
    throw codedError(ErrorCodes.NATIVE_UNAVAILABLE, `NOTIFY_SOCKET is set, but only the native addon can send to it (${failures[0] ?? 'no build found'})`, {
      tried: failures,
    });
  }
  const outcome = binding.notifySocket(address, state);
  if ('errno' in outcome) {
    const error = systemError(outcome.errno, outcome.syscall);
    error.message = `${error.message} (NOTIFY_SOCKET=${address})`;
    throw error;
  }
  return true;
}
