// The command line's side of an upgrade without downtime: `--upgrade` takes the listening
// socket over from the running server, and every server offers its own to a successor on the
// control socket. src/upgrade/ has the protocol and who owns each descriptor when.
import { drainListener, takeOver, UpgradeControl } from '../upgrade/index.js';
import type { TakeOver } from '../upgrade/index.js';
import type { TLSListener } from '../index.js';
import type { CliOptions } from './options.js';
import { StartupError } from './startup_error.js';
import type { CliLog } from './log.js';


/** --upgrade: the predecessor's listening socket, or a StartupError (the predecessor keeps serving). */
export async function receiveFromPredecessor(options: CliOptions): Promise<TakeOver> {
  try {
    const handOver = await takeOver({ path: options.controlSocket });
    if (handOver.fds.length !== 1) {
      handOver.abandon();
      for (const fd of handOver.fds) handOver.closeUnadopted(fd);
      throw new StartupError(`upgrade failed: expected one listening socket, got ${handOver.fds.length}; the running server keeps serving`);
    }
    return handOver;
  } catch (error) {
    if (error instanceof StartupError) throw error;
    const { message } = error as Error;
    // Nothing listens on the control socket: there is no running server to keep serving.
    const nobody = /connect (ENOENT|ECONNREFUSED)/.test(message);
    throw new StartupError(`upgrade failed: ${message}; ${nobody ? 'no server is running there (start one without --upgrade)' : 'the running server keeps serving'}`);
  }
}

/**
 * Accepting on the taken-over socket: tell the predecessor, which stops accepting. A failure
 * here means the predecessor kept serving (it timed out): the caller closes this listener.
 */
export async function confirmToPredecessor(handOver: TakeOver, log: CliLog): Promise<void> {
  await handOver.confirm();
  log.event('info', 'tookOver', `took the listening socket over from process ${handOver.predecessorPid}, which is draining`, {
    predecessorPid: handOver.predecessorPid,
  });
}

/** Listens for a successor on the control socket; null (with a note) where that cannot be. */
export async function offerToSuccessors(listener: TLSListener, options: CliOptions, log: CliLog): Promise<UpgradeControl | null> {
  try {
    // The directory is not created here: with --cert the state directory is never made.
    const control = await UpgradeControl.listen([listener], { path: options.controlSocket });
    control.on('handOffFailed', (error: Error) => log.event('warn', 'upgradeAbandoned', `upgrade abandoned, still serving: ${error.message}`));
    return control;
  } catch (error) {
    const { code } = error as { code?: unknown };
    const reason = `${(error as Error).message}${typeof code === 'string' ? ` (${code})` : ''}`;
    log.event('warn', 'noUpgrades', `no upgrades without downtime for this process (control socket ${options.controlSocket}): ${reason}`);
    return null;
  }
}

/** Resolves when a successor has taken the listening socket over. */
export function handedOff(control: UpgradeControl | null): Promise<'upgrade'> {
  return new Promise((resolve) => control?.once('handedOff', () => resolve('upgrade')));
}

/** The graceful end after a hand-off: handshakes under way finish, then close({ gracefulTimeout }). */
export function drainAfterHandOff(listener: TLSListener, gracefulTimeout: number): Promise<void> {
  return drainListener(listener, gracefulTimeout);
}
