// A worker's book: the registry every listener keeps, which also tells the main thread each
// time a connection is released, so the main thread's stats() stay exact across workers, and
// writes each setup failure and handshake time into the slot's shared setup book (setup_book.ts).
import { ConnectionRegistry } from '../registry.js';
import type { ConnectionRecord } from '../registry.js';
import { PUBLISHED_ORDER } from './dispatch_binding.js';
import type { PublishedCounters } from './dispatch_binding.js';
import type { SetupBookWriter } from './setup_book.js';

export class PublishingRegistry extends ConnectionRegistry {
  private readonly values = new Float64Array(PUBLISHED_ORDER.length);
  private sink: ((values: Float64Array) => void) | null = null;

  /** Where per-address slots of released connections go (the worker's queue, which counts them out). */
  private addressSink: ((slot: number) => void) | null = null;

  constructor(private readonly setupBook: SetupBookWriter) {
    super();
  }

  /** Where the counters go (the worker's queue); set once the queue exists. */
  publishTo(sink: (values: Float64Array) => void, addressSink: (slot: number) => void): void {
    this.sink = sink;
    this.addressSink = addressSink;
  }

  override enterHandler(record: ConnectionRecord): void {
    super.enterHandler(record);
    // A handshake finished: an accept thread paused at maxPendingHandshakes may go on.
    this.publish();
  }

  override countSetupFailure(code: string): void {
    super.countSetupFailure(code);
    this.setupBook.countFailure(code);
  }

  override recordHandshakeTime(ms: number): void {
    super.recordHandshakeTime(ms);
    this.setupBook.recordDuration(ms);
  }

  override release(id: number): void {
    const record = this.get(id);
    // The accept thread counted it against its peer's address: counted out through the queue
    // (the worker's own admission counters have no per-address slots).
    const addressSlot = record?.addressSlot ?? -1;
    if (record !== undefined) record.addressSlot = -1;
    super.release(id);
    if (addressSlot >= 0) this.addressSink?.(addressSlot);
    this.publish();
  }

  override releaseUnregistered(): void {
    super.releaseUnregistered();
    this.publish();
  }

  publish(): void {
    if (!this.sink) return;
    // Read field by field, not through counters(): this runs for every connection twice, and
    // counters() copies what is not published (the failure codes, the handshake-time buckets).
    const current: PublishedCounters = {
      active: this.activeCount,
      closed: this.closedCount,
      handshakesCompleted: this.handshakes.completed,
      handshakesFailed: this.handshakes.failed,
      handshakesTimedOut: this.handshakes.timedOut,
      handshakesAborted: this.handshakes.aborted,
      sniCredential: this.sni.sniCredential,
      primaryCredential: this.sni.primaryCredential,
      handlerErrors: this.handlerErrors,
      idleTimeouts: this.idleTimeouts,
      inSetup: this.inSetupCount,
      proxyInvalid: this.proxyProtocol.invalid,
      proxyUntrusted: this.proxyProtocol.untrusted,
      proxyHealthChecks: this.proxyProtocol.healthChecks,
      rejectedPerAddress: this.rejectedPerAddress,
      rejectedAddressTableFull: this.rejectedAddressTableFull,
    };
    PUBLISHED_ORDER.forEach((key, index) => (this.values[index] = current[key]));
    this.sink(this.values);
  }
}
