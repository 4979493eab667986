// The accept loop's tuning, checked before it reaches the addon: each number is cast to an
// integer in C++, where NaN, Infinity or 1e15 would be undefined behaviour. The addon checks
// the same ranges again (native/acceptor.cc); this copy gives users the error at construction.
import { codedError, ErrorCodes } from '../errors.js';
import type { AcceptorOptions } from '../native/binding.js';

export const ACCEPTOR_OPTION_LIMITS = {
  batchLimit: { min: 1, max: 4096 },
  pauseMinMs: { min: 1, max: 60_000, default: 5 },
  /** from pauseMinMs */
  pauseMaxMs: { max: 3_600_000 },
} as const;

function checkInteger(options: AcceptorOptions, name: keyof AcceptorOptions, min: number, max: number): void {
  const value: unknown = options[name];
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw codedError(ErrorCodes.INVALID_OPTION, `acceptorOptions.${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
}

/** Throws ERR_INVALID_OPTION unless every option is absent or an integer in its range. */
export function validateAcceptorOptions(options: AcceptorOptions | undefined): AcceptorOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) {
    throw codedError(ErrorCodes.INVALID_OPTION, 'acceptorOptions must be an object');
  }
  const { batchLimit, pauseMinMs, pauseMaxMs } = ACCEPTOR_OPTION_LIMITS;
  checkInteger(options, 'batchLimit', batchLimit.min, batchLimit.max);
  checkInteger(options, 'pauseMinMs', pauseMinMs.min, pauseMinMs.max);
  checkInteger(options, 'pauseMaxMs', options.pauseMinMs ?? pauseMinMs.default, pauseMaxMs.max);
  return { ...options };
}
