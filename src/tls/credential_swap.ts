// Replacing a TLS listener's credentials while it serves (listener.setCredentials): every new
// context is built and checked before any is swapped in, so a bad certificate leaves the
// listener serving exactly what it served before.
import type tls from 'node:tls';
import { codedError, ErrorCodes } from '../errors.js';
import { toSecureContext } from './credentials.js';
import type { ContextPurpose, ServerCredential } from './credentials.js';
import type { ServingContexts } from './tls_setup.js';

export interface CredentialUpdate {
  /** Replaces the credential for clients that send no SNI. */
  credential?: ServerCredential | tls.SecureContext;
  /** Replaces (or adds) the credential for clients that send SNI. */
  sniCredential?: ServerCredential | tls.SecureContext;
}

const UPDATE_KEYS = new Set(['credential', 'sniCredential']);

/** Throws ERR_INVALID_OPTION unless `update` is { credential?, sniCredential? } with at least one. */
export function checkUpdateShape(update: CredentialUpdate): void {
  if (typeof update !== 'object' || update === null) {
    throw codedError(ErrorCodes.INVALID_OPTION, 'setCredentials needs an object: { credential?, sniCredential? }');
  }
  const unknown = Object.keys(update).filter((key) => !UPDATE_KEYS.has(key));
  if (unknown.length > 0) {
    throw codedError(ErrorCodes.INVALID_OPTION, `setCredentials: unknown option ${unknown.join(', ')} (expected credential, sniCredential)`);
  }
  if (update.credential === undefined && update.sniCredential === undefined) {
    throw codedError(ErrorCodes.INVALID_OPTION, 'setCredentials needs credential, sniCredential or both');
  }
}

/** The contexts after `update`; throws ERR_INVALID_OPTION or ERR_INVALID_CREDENTIAL and changes nothing. */
export function contextsAfter(current: Readonly<ServingContexts>, update: CredentialUpdate, purpose: ContextPurpose): ServingContexts {
  checkUpdateShape(update);
  const context = update.credential !== undefined ? toSecureContext(update.credential, 'credential', purpose) : current.context;
  const sniContext = update.sniCredential !== undefined ? toSecureContext(update.sniCredential, 'sniCredential', purpose) : current.sniContext;
  return sniContext !== undefined ? { context, sniContext } : { context };
}
