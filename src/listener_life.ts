// One listener life cycle, new -> opening -> listening -> closing -> closed, for both listener
// kinds (src/listener.ts on one thread, src/workers/worker_listener.ts with workers), so that
// what listen() and close() accept, what they emit and what a failure leaves behind cannot
// drift apart between them.
//
// A failed listen() follows net.Server: no 'close' (nothing was listening, so nothing
// closed), and the listener can listen again, e.g. once the port is free. Where net.Server
// emits 'error', listen() rejects instead: that promise is how a caller hears of it, and an
// 'error' event too would throw from a caller that already handles the rejection.
import type { EventEmitter } from 'node:events';
import type net from 'node:net';
import { validateCloseOptions } from './listener_options.js';
import type { CloseOptions } from './listener_options.js';
import { rejectUnknownOptions } from './option_keys.js';
import { codedError, ErrorCodes } from './errors.js';

export type LifeState = 'new' | 'opening' | 'listening' | 'closing' | 'closed';

/** What a listener does at each step; the life cycle decides when. */
export interface LifeSteps {
  /** Binds and starts accepting; resolves with the bound address. */
  open(): Promise<net.AddressInfo>;
  /** Opening failed: release whatever it got as far as starting, so that listen() can run again. */
  undo(error: unknown): void | Promise<void>;
  /** Listening: the 'listening' event is emitted right after. */
  opened?(address: net.AddressInfo): void;
}

export class ListenerLife {
  private current: LifeState = 'new';
  private listening: Promise<net.AddressInfo> | null = null;
  private closing: Promise<void> | null = null;

  constructor(private readonly emitter: EventEmitter) {}

  get state(): LifeState {
    return this.current;
  }

  /** close() has begun: listen() is refused and a connection that arrives is destroyed. */
  get stopping(): boolean {
    return this.current === 'closing' || this.current === 'closed';
  }

  get isListening(): boolean {
    return this.current === 'listening';
  }

  /** One promise per attempt: listen() while opening or listening returns the same one. */
  listen(steps: LifeSteps): Promise<net.AddressInfo> {
    if (this.stopping) return Promise.reject(codedError(ErrorCodes.LISTENER_CLOSED, 'the listener is closed'));
    if (this.listening) return this.listening;
    this.current = 'opening';
    const attempt = steps.open().then(
      (address) => {
        if (this.current !== 'opening') throw codedError(ErrorCodes.LISTENER_CLOSED, 'the listener was closed while opening');
        this.current = 'listening';
        steps.opened?.(address);
        this.emitter.emit('listening', address);
        return address;
      },
      async (error: unknown) => {
        await steps.undo(error);
        // Back to new, as net.Server: a later listen() starts afresh. A close() during the
        // attempt keeps its own course (it waits for this attempt to settle).
        if (this.current === 'opening') {
          this.current = 'new';
          this.listening = null;
        }
        throw error;
      },
    );
    this.listening = attempt;
    return attempt;
  }

  /**
   * close() of either listener: options checked the same way, one promise for every call,
   * `run` started once whatever attempt to open is under way has settled (`opening`), and
   * 'close' emitted once `run` resolves. `run` gets the checked options.
   */
  close(options: CloseOptions, run: (options: CloseOptions, opening: Promise<void>) => Promise<void>, closed?: () => void): Promise<void> {
    if (this.closing) return this.closing;
    rejectUnknownOptions('close', options);
    validateCloseOptions(options);
    const opening = this.current === 'opening' && this.listening ? this.listening.then(() => undefined, () => undefined) : Promise.resolve();
    this.current = 'closing';
    this.closing = run(options, opening).then(() => {
      this.current = 'closed';
      closed?.();
      this.emitter.emit('close');
    });
    return this.closing;
  }
}
