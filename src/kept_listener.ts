// A listener that other code holding the same emitter cannot take off.
//
// A connection is released from the registry on its socket's 'close'. Where that socket is also
// the handler's (the one-socket TLS path, src/tls/direct_tls_socket.ts), a handler or a library
// calling socket.removeAllListeners('close') (or removeAllListeners()) would take the registry's
// listener off too: the connection would stay "active" after its descriptor closed, and close()
// would wait for it forever. EventEmitter reports each removal on 'removeListener', so a removed
// listener is put back, once the removing call has returned (removeAllListeners() with no
// argument replaces the whole listener table at its very end).
import type { EventEmitter } from 'node:events';

/** Calls `listener` on the first `event`, even if someone removes the listeners of `event` before. */
export function onceKept(emitter: EventEmitter, event: string, listener: (...args: unknown[]) => void): void {
  let ran = false;
  const run = (...args: unknown[]): void => {
    if (ran) return;
    ran = true;
    emitter.off('removeListener', watch);
    emitter.off(event, run);
    listener(...args);
  };
  const restore = (): void => {
    if (ran) return;
    if (!emitter.listeners(event).includes(run)) emitter.on(event, run);
    if (!emitter.listeners('removeListener').includes(watch)) emitter.on('removeListener', watch);
  };
  function watch(name: string | symbol, removed: unknown): void {
    if (ran) return;
    if ((name === event && removed === run) || (name === 'removeListener' && removed === watch)) queueMicrotask(restore);
  }
  emitter.on(event, run);
  emitter.on('removeListener', watch);
}
