// The native acceptor: a listening socket polled on this thread's loop, accepting in batches.
import type net from 'node:net';
import type { AcceptBackend, AcceptCounters, AcceptSink, ListenTarget } from './backend.js';
import { AcceptEventKind } from '../native/binding.js';
import type { AcceptorOptions, ListenOutcome, NativeAcceptor, NativeBinding } from '../native/binding.js';
import { codedError, ErrorCodes, systemError } from '../errors.js';

export class NativeAcceptBackend implements AcceptBackend {
  readonly kind = 'native' as const;
  private acceptor: NativeAcceptor | null = null;
  private closed = false;

  constructor(
    private readonly binding: NativeBinding,
    private readonly sink: AcceptSink,
    private readonly acceptorOptions: AcceptorOptions = {},
  ) {}

  open(target: ListenTarget): Promise<net.AddressInfo> {
    const outcome: ListenOutcome =
      target.kind === 'fd'
        ? this.binding.prepareAdoptedSocket(target.fd)
        : this.binding.openListenSocket(target.address.family, target.address.address, target.address.port, target.backlog);
    if ('errno' in outcome) {
      const where = target.kind === 'address' ? { address: target.address.address, port: target.address.port } : {};
      return Promise.reject(systemError(outcome.errno, outcome.syscall, where));
    }
    // From here the listening descriptor belongs to the acceptor (it closes it on close()).
    this.acceptor = new this.binding.Acceptor(
      outcome.fd,
      (fds) => this.sink.onDescriptors(fds),
      (kind, errno, delayMs) => this.onAcceptEvent(kind, errno, delayMs),
      this.acceptorOptions,
    );
    if (this.closed) {
      this.acceptor.close();
      return Promise.reject(codedError(ErrorCodes.LISTENER_CLOSED, 'the listener was closed while opening'));
    }
    this.acceptor.start();
    const address = this.address();
    return address ? Promise.resolve(address) : Promise.reject(new Error('listening socket has no address'));
  }

  private onAcceptEvent(kind: AcceptEventKind, errno: number, delayMs: number): void {
    const error = systemError(errno, 'accept');
    if (kind === AcceptEventKind.Retry) this.sink.onRetry(error);
    else if (kind === AcceptEventKind.Pause) this.sink.onPause(error, delayMs);
    else this.sink.onFatal(error);
  }

  address(): net.AddressInfo | null {
    return this.acceptor?.address() ?? null;
  }

  counters(): AcceptCounters {
    if (!this.acceptor) return { accepted: 0, pauses: 0, retriesByErrno: {} };
    const stats = this.acceptor.stats();
    return { accepted: stats.accepted, pauses: stats.pauses, retriesByErrno: stats.retriesByErrno };
  }

  close(): void {
    this.closed = true;
    this.acceptor?.close();
  }

  ref(): void {
    this.acceptor?.ref();
  }

  unref(): void {
    this.acceptor?.unref();
  }
}
