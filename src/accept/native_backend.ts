// The native acceptor: a listening socket polled on this thread's loop, accepting in batches.
//
// The listening descriptor on the way in: one this backend opened (an address target) is its
// own until the acceptor takes it, and is closed here if the acceptor cannot; an adopted one
// (an fd target) stays the caller's until the acceptor takes it, and is never closed here if
// that fails. The acceptor takes it when `new Acceptor()` returns, and hands it back if
// `start()` throws (native/acceptor.h).
import fs from 'node:fs';
import type net from 'node:net';
import type { AcceptBackend, AcceptCounters, AcceptSink, ListenTarget } from './backend.js';
import { adoptionError } from './adoption.js';
import { validateAcceptorOptions } from './acceptor_options.js';
import { AcceptEventKind, AdmissionReasonCode } from '../native/binding.js';
import type { AdmissionCounters, AdmissionReason } from './admission.js';
import type { AcceptorOptions, ListenOutcome, NativeAcceptor, NativeBinding, NativeCallFailure } from '../native/binding.js';
import { codedError, errnoName, ErrorCodes, systemError } from '../errors.js';

const ENOPROTOOPT_NAME = 'ENOPROTOOPT';

function admissionReasonOf(code: number): AdmissionReason {
  return code === AdmissionReasonCode.MaxPendingHandshakes ? 'maxPendingHandshakes' : 'maxConnections';
}

function isNativeCallFailure(error: unknown): error is NativeCallFailure {
  const candidate = error as Partial<NativeCallFailure> | null;
  return error instanceof Error && typeof candidate?.errno === 'number' && typeof candidate.syscall === 'string';
}

/** A libuv failure becomes a SystemError built like every other; argument errors pass as they are. */
function userError(error: unknown): unknown {
  return isNativeCallFailure(error) ? systemError(error.errno, error.syscall) : error;
}

export class NativeAcceptBackend implements AcceptBackend {
  readonly kind = 'native' as const;
  private acceptor: NativeAcceptor | null = null;
  /** The descriptor the acceptor took, while it has it (for a hand-over to another process). */
  private listenFd: number | null = null;
  private closed = false;

  private readonly acceptorOptions: AcceptorOptions;
  /** The limit accepting is paused at, between the Backpressure event and resume(). */
  private pausedFor: AdmissionReason | null = null;

  constructor(
    private readonly binding: NativeBinding,
    private readonly sink: AcceptSink,
    acceptorOptions: AcceptorOptions = {},
    private readonly admission: AdmissionCounters,
    /** Whether each batch comes with its peers' addresses (the listener reads them at accept). */
    private readonly peerAddresses = false,
  ) {
    this.acceptorOptions = validateAcceptorOptions(acceptorOptions);
  }

  open(target: ListenTarget): Promise<net.AddressInfo> {
    const outcome: ListenOutcome =
      target.kind === 'fd'
        ? this.binding.prepareAdoptedSocket(target.fd)
        : this.binding.openListenSocket(target.address.family, target.address.address, target.address.port, target.backlog);
    if ('errno' in outcome) {
      if (target.kind === 'fd') return Promise.reject(adoptionError(target.fd, outcome));
      return Promise.reject(systemError(outcome.errno, outcome.syscall, { address: target.address.address, port: target.address.port }));
    }
    const deferAccept = this.admission.limits.deferAccept ?? 0;
    if (deferAccept > 0) {
      const errno = this.binding.setDeferAccept(outcome.fd, deferAccept);
      // Without TCP_DEFER_ACCEPT (not Linux) the option does nothing, as documented.
      if (errno !== 0 && errnoName(errno) !== ENOPROTOOPT_NAME) {
        return this.failBeforeAccepting(target, outcome.fd, systemError(errno, 'setsockopt'));
      }
    }
    let acceptor: NativeAcceptor;
    try {
      acceptor = new this.binding.Acceptor(
        outcome.fd,
        (fds, count, addressSlots, peerWords, ipv6Texts) =>
          this.sink.onDescriptors(fds, count, addressSlots, peerWords === undefined ? undefined : { words: peerWords, ipv6Texts }),
        (kind, errno, delayMs) => this.onAcceptEvent(kind, errno, delayMs),
        { ...this.acceptorOptions, ...this.admission.nativeOptions(), peerAddresses: this.peerAddresses },
      );
    } catch (error) {
      // E.g. uv_poll_init EEXIST: this thread already polls the descriptor (a net.Server
      // listening on it, or another listener that adopted it). The acceptor did not take it.
      return this.failBeforeAccepting(target, outcome.fd, error);
    }
    // From here the listening descriptor belongs to the acceptor (it closes it on close()).
    this.acceptor = acceptor;
    // Its per-address table counts a released connection out (a no-op once it has closed).
    if (this.admission.limits.maxConnectionsPerAddress !== undefined) this.admission.releaseAddress = (slot) => acceptor.releaseAddress(slot);
    this.listenFd = outcome.fd;
    if (this.closed) {
      acceptor.close();
      return Promise.reject(codedError(ErrorCodes.LISTENER_CLOSED, 'the listener was closed while opening'));
    }
    try {
      acceptor.start();
    } catch (error) {
      // The acceptor closed itself and handed the descriptor back.
      this.acceptor = null;
      this.listenFd = null;
      return this.failBeforeAccepting(target, outcome.fd, error);
    }
    const address = this.address();
    return address ? Promise.resolve(address) : Promise.reject(new Error('listening socket has no address'));
  }

  /** The acceptor never took `fd`: close it if this backend opened it; an adopted one stays the caller's. */
  private failBeforeAccepting(target: ListenTarget, fd: number, error: unknown): Promise<never> {
    if (target.kind === 'address') {
      try {
        fs.closeSync(fd);
      } catch {
        // nothing else holds it, so closing cannot fail in a way that leaves it open
      }
    }
    return Promise.reject(userError(error));
  }

  private onAcceptEvent(kind: AcceptEventKind, errno: number, delayMs: number): void {
    if (kind === AcceptEventKind.Backpressure) {
      this.pausedFor = admissionReasonOf(errno);
      this.sink.onBackpressure(true, this.pausedFor);
      return;
    }
    const error = systemError(errno, 'accept');
    if (kind === AcceptEventKind.Retry) this.sink.onRetry(error);
    else if (kind === AcceptEventKind.Pause) this.sink.onPause(error, delayMs);
    else this.sink.onFatal(error);
  }

  address(): net.AddressInfo | null {
    return this.acceptor?.address() ?? null;
  }

  listeningDescriptor(): number | null {
    return this.closed || this.acceptor === null || this.acceptor.stats().closed ? null : this.listenFd;
  }

  counters(): AcceptCounters {
    const rejected = { ...this.admission.rejected };
    if (!this.acceptor) {
      return { accepted: 0, pauses: 0, retriesByErrno: {}, admission: { pausedFor: null, pausedMs: 0, pauses: 0, backlog: null }, rejected };
    }
    const stats = this.acceptor.stats();
    const { reason, pausedMs, pauses, backlog, rejectedPerAddress, rejectedAddressTableFull, rejectedQueued, sheddingCpuMs } = stats.admission;
    rejected.maxConnectionsPerAddress = rejectedPerAddress;
    rejected.addressTableFull = rejectedAddressTableFull;
    rejected.maxQueuedConnections = rejectedQueued;
    const shedding = this.admission.limits.maxQueuedConnections !== undefined ? { sheddingCpuMs } : {};
    return {
      accepted: stats.accepted,
      pauses: stats.pauses,
      retriesByErrno: stats.retriesByErrno,
      admission: { pausedFor: reason === AdmissionReasonCode.None ? null : admissionReasonOf(reason), pausedMs, pauses, backlog, ...shedding },
      rejected,
    };
  }

  resume(): void {
    if (this.acceptor?.resume() === true && this.pausedFor !== null) {
      const reason = this.pausedFor;
      this.pausedFor = null;
      this.sink.onBackpressure(false, reason);
    }
  }

  close(): void {
    this.closed = true;
    this.listenFd = null;
    this.acceptor?.close();
  }

  ref(): void {
    this.acceptor?.ref();
  }

  unref(): void {
    this.acceptor?.unref();
  }
}
