// The listening socket a service manager passed in (systemd socket activation), which the CLI
// serves instead of binding --host/--port. With several, --socket-name picks one by its
// FileDescriptorName=; the others are left as they are.
import { systemdListenFds } from '../index.js';
import type { ActivatedSocket } from '../index.js';
import { StartupError } from './startup_error.js';

/** The socket to adopt, or undefined when none was passed (then --host/--port are bound). */
export function activatedSocket(socketName: string | undefined): ActivatedSocket | undefined {
  const sockets = systemdListenFds();
  const listed = sockets.map(({ fd, name }) => `fd ${fd} '${name}'`).join(', ');
  if (socketName !== undefined) {
    const named = sockets.find(({ name }) => name === socketName);
    if (named === undefined) {
      throw new StartupError(`--socket-name ${socketName}: ${sockets.length === 0 ? 'no sockets were passed (LISTEN_FDS)' : `no passed socket has that name (${listed})`}`);
    }
    return named;
  }
  if (sockets.length > 1) throw new StartupError(`${sockets.length} sockets were passed (${listed}); choose one with --socket-name`);
  return sockets[0];
}
