// A worker's book: the registry every listener keeps, which also tells the main thread each
// time a connection is released, so the main thread's stats() stay exact across workers.
import { ConnectionRegistry } from '../registry.js';
import type { ConnectionRecord } from '../registry.js';
import { PUBLISHED_ORDER } from './dispatch_binding.js';
import type { PublishedCounters } from './dispatch_binding.js';

export class PublishingRegistry extends ConnectionRegistry {
  private readonly values = new Float64Array(PUBLISHED_ORDER.length);
  private sink: ((values: Float64Array) => void) | null = null;

  /** Where per-address slots of released connections go (the worker's queue, which counts them out). */
  private addressSink: ((slot: number) => void) | null = null;

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
    const book = this.counters();
    const current: PublishedCounters = {
      active: book.active,
      closed: book.closed,
      handshakesCompleted: book.handshakes.completed,
      handshakesFailed: book.handshakes.failed,
      handshakesTimedOut: book.handshakes.timedOut,
      handshakesAborted: book.handshakes.aborted,
      sniCredential: book.sni.sniCredential,
      primaryCredential: book.sni.primaryCredential,
      handlerErrors: book.handlerErrors,
      idleTimeouts: book.idleTimeouts,
      inSetup: book.inSetup,
      proxyInvalid: book.proxyProtocol.invalid,
      proxyUntrusted: book.proxyProtocol.untrusted,
      rejectedPerAddress: book.rejectedPerAddress,
      rejectedAddressTableFull: book.rejectedAddressTableFull,
    };
    PUBLISHED_ORDER.forEach((key, index) => (this.values[index] = current[key]));
    this.sink(this.values);
  }
}
