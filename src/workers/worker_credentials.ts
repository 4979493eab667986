// Credentials as they cross to worker threads: PEM { key, cert } only (a SecureContext is a
// native object of one thread), checked on the main thread so a bad one is reported once, at
// the call, and no worker ever serves half of an update.
import { codedError, ErrorCodes } from '../errors.js';
import { toSecureContext } from '../tls/credentials.js';
import type { ServerCredential } from '../tls/credentials.js';
import { checkUpdateShape } from '../tls/credential_swap.js';
import type { CredentialUpdate } from '../tls/credential_swap.js';
import type { WorkerListenerOptions } from './protocol.js';

export function cloneableCredential(value: CredentialUpdate['credential'] | undefined, which: string): ServerCredential | undefined {
  if (value === undefined) return undefined;
  const candidate = value as Partial<ServerCredential>;
  if (typeof value !== 'object' || value === null || candidate.key === undefined || candidate.cert === undefined) {
    throw codedError(
      ErrorCodes.INVALID_OPTION,
      `${which} must be { key, cert } (PEM) with workers: a SecureContext cannot be passed to a worker thread`,
    );
  }
  return { key: candidate.key, cert: candidate.cert };
}

/**
 * The workers' options after `update`, every new credential built once here first: throws
 * ERR_INVALID_OPTION or ERR_INVALID_CREDENTIAL and changes nothing.
 */
export function workerCredentialsAfter(
  current: Readonly<WorkerListenerOptions>,
  update: CredentialUpdate,
): { options: WorkerListenerOptions; changed: Pick<WorkerListenerOptions, 'credential' | 'sniCredential'> } {
  checkUpdateShape(update);
  const credential = cloneableCredential(update.credential, 'credential');
  const sniCredential = cloneableCredential(update.sniCredential, 'sniCredential');
  const purpose = { requestClientCert: current.requestClientCert === true };
  if (credential) toSecureContext(credential, 'credential', purpose);
  if (sniCredential) toSecureContext(sniCredential, 'sniCredential', purpose);
  const changed = { ...(credential ? { credential } : {}), ...(sniCredential ? { sniCredential } : {}) };
  return { options: { ...current, ...changed }, changed };
}
