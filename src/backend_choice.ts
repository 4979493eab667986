// Which accept backend serves a listener. The native one when it loads; otherwise the pure-JS
// one, with a single process warning, unless the caller asked for native explicitly.
import type { BackendKind } from './accept/backend.js';
import type { NativeBinding } from './native/binding.js';
import { loadNativeBinding } from './native/load.js';
import { codedError, ErrorCodes } from './errors.js';

let warned = false;

export function nativeAvailable(): boolean {
  return loadNativeBinding().binding !== null;
}

export function chooseBackend(requested: BackendKind | undefined): { kind: BackendKind; binding: NativeBinding | null } {
  if (requested !== undefined && requested !== 'native' && requested !== 'js') {
    throw codedError(ErrorCodes.INVALID_OPTION, `backend must be 'native' or 'js', got ${String(requested)}`);
  }
  const { binding, failures } = loadNativeBinding();
  if (requested === 'js') return { kind: 'js', binding };
  if (binding) return { kind: 'native', binding };
  if (requested === 'native') {
    throw codedError(
      ErrorCodes.NATIVE_UNAVAILABLE,
      `the native acceptor is not available; tried:\n  ${failures.join('\n  ')}\n` +
        "rebuild it with `npm rebuild native-tls-listener`, or use backend: 'js'",
      { tried: failures },
    );
  }
  if (!warned) {
    warned = true;
    process.emitWarning(
      `native-tls-listener: the native acceptor is not available (${failures[0] ?? 'no build found'}); using the pure-JS backend`,
      { code: 'NTL_NATIVE_UNAVAILABLE' },
    );
  }
  return { kind: 'js', binding: null };
}
