// One worker slot of a listener with `workers`: the thread that serves it now, started,
// replaced when it dies (at once the first time, then with a doubling back-off while it keeps
// dying young), and closed. The slot's id stays while its threads come and go; the accept
// thread keeps the books by slot (native/dispatch_state.h).
import { Worker } from 'node:worker_threads';
import type { WorkerOptions } from 'node:worker_threads';
import { codedError, ErrorCodes } from '../errors.js';
import { errorFrom } from './protocol.js';
import type { CredentialsMessage, MainToWorker, WorkerStart, WorkerToMain } from './protocol.js';
import { SetupBookReader } from './setup_book.js';

const entryUrl = new URL('./worker_entry.js', import.meta.url);

/** A worker that lived this long before dying starts the back-off from scratch. */
const HEALTHY_AFTER_MS = 5000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;
/** How long close() lets a starting worker finish starting before it terminates it. */
const STARTING_CLOSE_WAIT_MS = 10_000;

export interface SlotHost {
  /** A worker of this slot is taking connections. */
  online(slot: WorkerSlot, threadId: number): void;
  /** A worker of this slot ended (not by close()); `restartInMs` null when it will not be replaced. */
  exited(slot: WorkerSlot, info: { threadId: number; exitCode: number; error?: Error; restartInMs: number | null }): void;
  message(slot: WorkerSlot, message: WorkerToMain): void;
  /** What a new worker of this slot starts with. */
  startConfig(slot: WorkerSlot): { start: WorkerStart; options: WorkerOptions };
}

export class WorkerSlot {
  private worker: Worker | null = null;
  private closing = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private failuresInARow = 0;
  private unrefed = false;
  /** The current worker has said it is ready (it listens for 'close' only from then on). */
  private ready = false;
  /** Settles when the current worker is ready or has exited. */
  private settled: Promise<void> = Promise.resolve();
  /** Workers this slot has started, the first included. */
  starts = 0;
  /** Setup failures and handshake times of every worker of this slot (its buffer goes to each). */
  readonly setupBook = new SetupBookReader();

  constructor(
    readonly id: number,
    private readonly host: SlotHost,
  ) {}

  get threadId(): number | null {
    return this.worker?.threadId ?? null;
  }

  /** Starts a worker; resolves when it takes connections, rejects if it fails or exits first. */
  start(): Promise<void> {
    const { start, options } = this.host.startConfig(this);
    const worker = new Worker(entryUrl, options);
    if (this.unrefed) worker.unref();
    this.worker = worker;
    this.starts++;
    const startedAt = Date.now();
    const threadId = worker.threadId;
    let ready = false;
    this.ready = false;
    let lastError: Error | undefined;
    const started = new Promise<void>((resolve, reject) => {
      worker.on('message', (message: WorkerToMain) => {
        if (message.type === 'ready') {
          ready = true;
          this.ready = true;
          this.host.online(this, threadId);
          resolve();
        } else if (message.type === 'failed') {
          lastError = codedError(ErrorCodes.WORKER_FAILED, `worker ${this.id} failed to start: ${message.error.message}`, {
            cause: errorFrom(message.error),
          });
        } else this.host.message(this, message);
      });
      worker.on('error', (error: Error) => {
        lastError = error;
      });
      worker.once('exit', (exitCode: number) => {
        if (this.worker === worker) this.worker = null;
        if (!ready) reject(lastError ?? codedError(ErrorCodes.WORKER_FAILED, `worker ${this.id} exited with ${exitCode} before it was ready`));
        if (this.closing) return;
        this.failuresInARow = Date.now() - startedAt >= HEALTHY_AFTER_MS ? 0 : this.failuresInARow + 1;
        const restartInMs = this.failuresInARow <= 1 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (this.failuresInARow - 2));
        this.host.exited(this, { threadId, exitCode, ...(lastError ? { error: lastError } : {}), restartInMs });
        this.restartTimer = setTimeout(() => {
          this.restartTimer = null;
          // A replacement that fails is reported by its own exit, and replaced in turn.
          if (!this.closing) this.start().catch(() => undefined);
        }, restartInMs);
        if (this.unrefed) this.restartTimer.unref();
      });
      worker.postMessage(start);
    });
    this.settled = started.catch(() => undefined);
    return started;
  }

  /**
   * New ticket keys for the worker serving now; resolves once it has set them (a worker that
   * starts later gets the keys it starts with).
   */
  async setTicketKeys(keys: Uint8Array, seq: number): Promise<void> {
    await this.ask({ type: 'ticketKeys', keys, seq }, (answer) => answer.type === 'ticketKeysSet' && answer.seq === seq);
  }

  /**
   * New credentials for the worker serving now; resolves once it serves new connections with
   * them, rejects with the worker's error if it could not build them.
   */
  async setCredentials(message: CredentialsMessage): Promise<void> {
    const answer = await this.ask(message, (reply) => reply.type === 'credentialsSet' && reply.seq === message.seq);
    if (answer?.type === 'credentialsSet' && answer.error) throw errorFrom(answer.error);
  }

  /** The descriptors the worker serving now tracks (none when no worker is ready). */
  async trackedDescriptors(seq: number): Promise<Array<{ id: number; fd: number | null }>> {
    const answer = await this.ask({ type: 'tracked', seq }, (reply) => reply.type === 'tracked' && reply.seq === seq);
    return answer?.type === 'tracked' ? answer.descriptors : [];
  }

  /**
   * Sends `message` to the worker serving now and resolves with its answer (null when the
   * worker exits first). A worker still starting is waited for: it listens only once ready, and
   * if it started from the settings before this change it must get the change too.
   */
  private async ask(message: MainToWorker, isAnswer: (reply: WorkerToMain) => boolean): Promise<WorkerToMain | null> {
    if (this.worker && !this.ready) await this.settled;
    const worker = this.worker;
    if (!worker || !this.ready) return null;
    return new Promise<WorkerToMain | null>((resolve) => {
      const onMessage = (reply: WorkerToMain): void => {
        if (isAnswer(reply)) done(reply);
      };
      const onExit = (): void => done(null);
      const done = (reply: WorkerToMain | null): void => {
        worker.off('message', onMessage);
        worker.off('exit', onExit);
        resolve(reply);
      };
      worker.on('message', onMessage);
      worker.once('exit', onExit);
      worker.postMessage(message);
    });
  }

  /**
   * Closes the slot: its worker closes its listener (gracefully within `gracefulTimeout`),
   * then ends. Resolves once the thread has exited, so every descriptor it held is released.
   */
  async close(gracefulTimeout: number | undefined): Promise<void> {
    this.closing = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.worker && !this.ready) {
      // Terminating a worker while it is still importing modules leaks the descriptors of the
      // files it was reading (Node closes none of its in-flight fs reads): let it finish
      // starting (or failing), bounded, and close it the ordinary way.
      const timer = new Promise<void>((resolve) => setTimeout(resolve, STARTING_CLOSE_WAIT_MS).unref());
      await Promise.race([this.settled, timer]);
    }
    const worker = this.worker;
    if (!worker) return;
    if (!this.ready) {
      await worker.terminate();
      return;
    }
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const closed = new Promise<void>((resolve) => {
      worker.on('message', (message: WorkerToMain) => {
        if (message.type === 'closed') resolve();
      });
    });
    worker.postMessage({ type: 'close', ...(gracefulTimeout !== undefined ? { gracefulTimeout } : {}) } satisfies MainToWorker);
    await Promise.race([closed, exited]);
    await worker.terminate();
    await exited;
  }

  /** Tells the worker serving now, if it is ready (one starting is told once online). */
  notify(message: MainToWorker): void {
    if (this.worker && this.ready) this.worker.postMessage(message);
  }

  ref(): void {
    this.unrefed = false;
    this.worker?.ref();
    this.restartTimer?.ref();
  }

  unref(): void {
    this.unrefed = true;
    this.worker?.unref();
    this.restartTimer?.unref();
  }
}
