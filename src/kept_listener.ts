// A listener that other code holding the same emitter cannot take off.
//
// A connection is released from the registry on its socket's 'close'. Where that socket is also
// the handler's (plain TCP, and the one-socket TLS path, src/tls/direct_tls_socket.ts), a
// handler or a library calling socket.removeAllListeners('close') (or removeAllListeners())
// would take the registry's listener off too: the connection would stay "active" after its
// descriptor closed, and close() would wait for it forever. EventEmitter reports each removal
// on 'removeListener', so a removed listener is put back, once the removing call has returned
// (removeAllListeners() with no argument replaces the whole listener table at its very end).
//
// No closure per emitter: what is kept lives on the emitter under a symbol, and one
// module-level 'removeListener' listener watches every emitter (the hot path makes one per
// connection).
import type { EventEmitter } from 'node:events';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- EventEmitter's own listener type
type Listener = (...args: any[]) => void;

const kKept = Symbol('native-tls-listener.kept');

type Keeping = EventEmitter & { [kKept]?: Map<string, Listener> };

function restore(emitter: Keeping): void {
  const kept = emitter[kKept];
  if (kept === undefined || kept.size === 0) return;
  for (const [event, listener] of kept) if (!emitter.listeners(event).includes(listener)) emitter.on(event, listener);
  if (!emitter.listeners('removeListener').includes(onRemoveListener)) emitter.on('removeListener', onRemoveListener);
}

function onRemoveListener(this: Keeping, name: string | symbol, removed: unknown): void {
  const kept = this[kKept];
  if (kept === undefined) return;
  if ((name === 'removeListener' && removed === onRemoveListener) || (typeof name === 'string' && kept.get(name) === removed)) {
    queueMicrotask(() => restore(this));
  }
}

/**
 * Keeps `listener` (already added for `event`, and added by nobody else) on `emitter`: put back
 * if anyone removes it, until unkeep(). The listener calls unkeep() when it runs for good.
 */
export function keep(emitter: EventEmitter, event: string, listener: Listener): void {
  const keeping = emitter as Keeping;
  let kept = keeping[kKept];
  if (kept === undefined) {
    kept = new Map();
    keeping[kKept] = kept;
  }
  if (kept.size === 0) emitter.on('removeListener', onRemoveListener);
  kept.set(event, listener);
}

/** Stops keeping the listener of `event`; it stays on the emitter if it is there. */
export function unkeep(emitter: EventEmitter, event: string): void {
  const kept = (emitter as Keeping)[kKept];
  if (kept === undefined || !kept.delete(event)) return;
  if (kept.size === 0) emitter.off('removeListener', onRemoveListener);
}
