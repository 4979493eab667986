// Checks for numbers that reach system calls, timers or the addon: a fraction, NaN, Infinity
// or a huge value would be truncated, wrapped, or (for a timer) turned into 1 ms, never what
// the caller asked for.
import { codedError, ErrorCodes } from './errors.js';

/** The largest delay setTimeout() honours; above it Node fires after 1 ms instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Throws ERR_INVALID_OPTION unless `value` is undefined or an integer in [min, max]. */
export function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw codedError(ErrorCodes.INVALID_OPTION, `${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
}
