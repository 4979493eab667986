// The pure-JS backend: net.Server underneath, for where the addon cannot load. libuv accepts
// one connection per wake-up and handles EMFILE itself, so it reports fewer accept errors.
import net from 'node:net';
import type { AcceptBackend, AcceptCounters, AcceptSink, ListenTarget } from './backend.js';
import { classifyAcceptError } from './accept_policy.js';
import { adoptionError, unsupportedFamilyError } from './adoption.js';
import { codedError, ErrorCodes, systemError } from '../errors.js';
import type { SystemError } from '../errors.js';
import type { NativeBinding } from '../native/binding.js';
import type { AdmissionCounters } from './admission.js';
import { debug } from '../diagnostics.js';
import { handleDescriptor } from '../node_internals.js';

// libuv defers a bind() failure to listen(), so Node reports EADDRINUSE from 'listen' with a
// negative errno; report it as the native backend does (positive errno, the call that failed).
const BIND_ERRORS = new Set(['EADDRINUSE', 'EADDRNOTAVAIL', 'EACCES']);

function normalizeListenError(error: SystemError, target: ListenTarget): Error {
  if (typeof error.errno !== 'number') return error;
  const syscall = BIND_ERRORS.has(error.code) ? 'bind' : error.syscall;
  const where = target.kind === 'address' ? { address: target.address.address, port: target.address.port } : {};
  return systemError(Math.abs(error.errno), syscall, where);
}

export class JsAcceptBackend implements AcceptBackend {
  readonly kind = 'js' as const;
  private readonly server: net.Server;
  private accepted = 0;
  private pauses = 0;
  private readonly retriesByErrno: Record<string, number> = {};
  private listening = false;
  private closed = false;

  constructor(
    private readonly sink: AcceptSink,
    /** The addon, when it loads: used only to prepare an adopted descriptor and for deferAccept. */
    private readonly binding: NativeBinding | null,
    private readonly admission: AdmissionCounters,
  ) {
    this.server = net.createServer({ noDelay: false }, (socket) => {
      // net.Server cannot stop accepting and leave clients in the backlog: a connection over
      // a limit is closed at once instead (README: "Admission control").
      // Its address's count is given back when the registry releases the connection (not on a
      // 'close' listener of its own: the handler gets this socket and may remove its listeners).
      let releaseAddress: (() => void) | undefined;
      const rejectedFor = this.admission.admitJs(
        () => socket.remoteAddress,
        (release) => {
          releaseAddress = release;
        },
      );
      if (rejectedFor !== null) {
        debug('connection from %s closed at accept: %s reached', socket.remoteAddress, rejectedFor);
        socket.destroy();
        return;
      }
      this.accepted++;
      this.sink.onSocket(socket, releaseAddress);
    });
  }

  /** TCP_DEFER_ACCEPT through the addon, when it loaded; net.Server has no way to set it. */
  private applyDeferAccept(): void {
    const seconds = this.admission.limits.deferAccept ?? 0;
    const fd = handleDescriptor(this.server);
    if (seconds === 0 || this.binding === null || fd === null) return;
    const errno = this.binding.setDeferAccept(fd, seconds);
    if (errno !== 0) debug('deferAccept not applied: %s', systemError(errno, 'setsockopt').message);
  }

  open(target: ListenTarget): Promise<net.AddressInfo> {
    if (target.kind === 'fd' && this.binding) {
      // net.Server adopts a descriptor as it is; make it non-blocking and close-on-exec the
      // way the native backend does, so a child process never inherits the listening socket.
      // The same checks refuse what is not a listening TCP socket, leaving it the caller's.
      const outcome = this.binding.prepareAdoptedSocket(target.fd);
      if ('errno' in outcome) return Promise.reject(adoptionError(target.fd, outcome));
    }
    return new Promise((resolve, reject) => {
      const onListenError = (error: SystemError): void => reject(normalizeListenError(error, target));
      this.server.once('error', onListenError);
      const onListening = (): void => {
        this.server.off('error', onListenError);
        if (this.closed) {
          this.server.close();
          reject(codedError(ErrorCodes.LISTENER_CLOSED, 'the listener was closed while opening'));
          return;
        }
        this.server.on('error', (error: SystemError) => this.onServerError(error));
        this.applyDeferAccept();
        // Listening from here, whatever follows: close() must stop it.
        this.listening = true;
        const address = this.address();
        if (address) resolve(address);
        else if (target.kind === 'fd') {
          // Without the addon nothing checked the family first. net.Server listens on an fd
          // as TCP (which always has an address) or, for AF_UNIX, as a pipe (which has none);
          // it refuses any other family. The listener closes this backend on the rejection,
          // and with the server the descriptor: net.Server owns it now and cannot hand it back.
          reject(unsupportedFamilyError(target.fd, 1));
        } else reject(new Error('listening socket has no address'));
      };
      if (target.kind === 'fd') {
        this.server.listen({ fd: target.fd, backlog: target.backlog }, onListening);
      } else {
        this.server.listen(
          { host: target.address.address, port: target.address.port, backlog: target.backlog, ipv6Only: false },
          onListening,
        );
      }
    });
  }

  // libuv >= 1.45 (Node >= 20.3) retries or swallows accept() errors itself, so on current
  // Node this sees none; it keeps the policy for the libuv versions that still report them.
  private onServerError(error: SystemError): void {
    const action = classifyAcceptError(error.code);
    // Node's errors carry libuv's negative errno; the statistics key by the positive one.
    const errno = String(Math.abs(error.errno));
    if (error.syscall === 'accept' && action === 'retry') {
      this.retriesByErrno[errno] = (this.retriesByErrno[errno] ?? 0) + 1;
      this.sink.onRetry(error);
    } else if (error.syscall === 'accept' && action === 'pause') {
      this.pauses++;
      this.sink.onPause(error, 0);
    } else {
      this.close();
      this.sink.onFatal(error);
    }
  }

  address(): net.AddressInfo | null {
    const address = this.server.address();
    return address !== null && typeof address === 'object' ? address : null;
  }

  listeningDescriptor(): number | null {
    if (!this.listening || this.closed) return null;
    // net.Server keeps the descriptor on its libuv handle; Node exposes it there on Unix.
    return handleDescriptor(this.server);
  }

  counters(): AcceptCounters {
    return {
      accepted: this.accepted,
      pauses: this.pauses,
      retriesByErrno: { ...this.retriesByErrno },
      // It never pauses at a limit (see the constructor); the backlog is not readable from here.
      admission: { pausedFor: null, pausedMs: 0, pauses: 0, backlog: null },
      rejected: { ...this.admission.rejected },
    };
  }

  /** Nothing to resume: net.Server never stops accepting. */
  resume(): void {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // net.Server.close() closes the listening handle now; it only waits for connections,
    // which the listener tracks itself.
    if (this.listening) this.server.close();
  }

  ref(): void {
    this.server.ref();
  }

  unref(): void {
    this.server.unref();
  }
}
