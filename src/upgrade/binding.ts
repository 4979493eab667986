// The addon's descriptor passing, or null: without the addon (JS backend only), or with an
// addon built before it had these calls (a stale build), upgrades are unavailable.
import { loadNativeBinding } from '../native/load.js';
import type { NativeBinding } from '../native/binding.js';

export function descriptorPassingBinding(): NativeBinding | null {
  const { binding } = loadNativeBinding();
  const calls = binding as Partial<NativeBinding> | null;
  return calls && typeof calls.sendDescriptors === 'function' && typeof calls.receiveDescriptors === 'function' ? binding : null;
}
