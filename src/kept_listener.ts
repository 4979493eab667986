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
// Not every removal is reported: a net.Socket keeps its listener table in V8's shape mode
// (Node's kShapeMode), where taking off an event's last listener emits no 'removeListener'
// (Node 20, 22). On a plain-TCP connection the kept 'close' listener is often the only one, so
// removeAllListeners('close') went unheard. Hence a second listener beside each kept one, and
// a second watcher: removing both, in any order, reports at least the first removal, and any
// reported removal of a kept event (or of a watcher) checks and restores them all.
//
// No closure per emitter: what is kept lives on the emitter under a symbol, and module-level
// functions watch every emitter (the hot path makes one per connection).
import type { EventEmitter } from 'node:events';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- EventEmitter's own listener type
type Listener = (...args: any[]) => void;

const kKept = Symbol('native-tls-listener.kept');

type Keeping = EventEmitter & { [kKept]?: Map<string, Listener> };

/** Beside each kept listener: its removal is reported when the kept one's alone would not be. */
function keptCompanion(): void {
  // nothing to do: it only makes the event's listeners a list
}

function restore(emitter: Keeping): void {
  const kept = emitter[kKept];
  if (kept === undefined || kept.size === 0) return;
  for (const [event, listener] of kept) {
    const listeners = emitter.listeners(event);
    if (!listeners.includes(listener)) emitter.on(event, listener);
    if (!listeners.includes(keptCompanion)) emitter.on(event, keptCompanion);
  }
  const watchers = emitter.listeners('removeListener');
  if (!watchers.includes(onRemoveListener)) emitter.on('removeListener', onRemoveListener);
  if (!watchers.includes(onRemoveListenerToo)) emitter.on('removeListener', onRemoveListenerToo);
}

// Any reported removal of a kept event's listeners or of a watcher: the kept ones may be among
// what goes, reported or not, so all are checked once the removing call has returned.
function onRemoveListener(this: Keeping, name: string | symbol): void {
  const kept = this[kKept];
  if (kept === undefined || kept.size === 0) return;
  if (name === 'removeListener' || (typeof name === 'string' && kept.has(name))) queueMicrotask(() => restore(this));
}

function onRemoveListenerToo(this: Keeping, name: string | symbol): void {
  onRemoveListener.call(this, name);
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
  if (kept.size === 0) {
    emitter.on('removeListener', onRemoveListener);
    emitter.on('removeListener', onRemoveListenerToo);
  }
  if (!kept.has(event)) emitter.on(event, keptCompanion);
  kept.set(event, listener);
}

/** Stops keeping the listener of `event`; it stays on the emitter if it is there. */
export function unkeep(emitter: EventEmitter, event: string): void {
  const kept = (emitter as Keeping)[kKept];
  if (kept === undefined || !kept.delete(event)) return;
  emitter.off(event, keptCompanion);
  if (kept.size === 0) {
    emitter.off('removeListener', onRemoveListener);
    emitter.off('removeListener', onRemoveListenerToo);
  }
}
