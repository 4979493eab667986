// The accept loop's tuning, checked before it reaches the addon: each number is cast to an
// integer in C++, where NaN, Infinity or 1e15 would be undefined behaviour. The addon checks
// the same ranges again (native/acceptor.cc); this copy gives users the error at construction.
import { codedError, ErrorCodes } from '../errors.js';
import { checkInteger } from '../validation.js';
import type { AcceptorOptions } from '../native/binding.js';
import { ADDRESS_TABLE_MAX } from './address_counts.js';

export const ACCEPTOR_OPTION_LIMITS = {
  batchLimit: { min: 1, max: 4096 },
  pauseMinMs: { min: 1, max: 60_000, default: 5 },
  /** from pauseMinMs */
  pauseMaxMs: { max: 3_600_000 },
  /** The per-address table's documented cap (src/accept/address_counts.ts) */
  addressTableSize: { min: 1, max: ADDRESS_TABLE_MAX },
} as const;

/** Throws ERR_INVALID_OPTION unless every option is absent or an integer in its range. */
export function validateAcceptorOptions(options: AcceptorOptions | undefined): AcceptorOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) {
    throw codedError(ErrorCodes.INVALID_OPTION, 'acceptorOptions must be an object');
  }
  const { batchLimit, pauseMinMs, pauseMaxMs, addressTableSize } = ACCEPTOR_OPTION_LIMITS;
  checkInteger('acceptorOptions.batchLimit', options.batchLimit, batchLimit.min, batchLimit.max);
  checkInteger('acceptorOptions.pauseMinMs', options.pauseMinMs, pauseMinMs.min, pauseMinMs.max);
  checkInteger('acceptorOptions.pauseMaxMs', options.pauseMaxMs, options.pauseMinMs ?? pauseMinMs.default, pauseMaxMs.max);
  checkInteger('acceptorOptions.addressTableSize', options.addressTableSize, addressTableSize.min, addressTableSize.max);
  return { ...options };
}
