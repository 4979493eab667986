// Decides whether the certificate chain a TLS client sent is acceptable.
//
// The rules reproduce the Haskell TLS server this listener replaces, so that
// clients which worked there keep working here. Notably, the trust anchor is
// the last certificate the client itself sent: the check establishes that the
// chain is internally consistent and current, not that it roots in a CA the
// server trusts. Callers that need the latter must pin the anchor themselves.
import type { X509Certificate } from 'node:crypto';

/** Longest chain (leaf included) a client may send. */
export const MAX_CLIENT_CHAIN_LENGTH = 4;

export type ClientChainRejectReason = 'expired' | 'unknown_ca' | 'chain_too_long' | 'other';

export type ClientChainRejection = {
  accepted: false;
  reason: ClientChainRejectReason;
  detail: string;
};

export type ClientChainVerdict = { accepted: true } | ClientChainRejection;

export interface ClientCertRejectedError extends Error {
  code: 'ERR_CLIENT_CERT_REJECTED';
  reason: ClientChainRejectReason;
}

/**
 * @param chain the certificates as the client sent them, leaf first.
 * @param now the instant every certificate must be valid at.
 */
export function validateClientChain(
  chain: readonly X509Certificate[],
  now: Date = new Date(),
): ClientChainVerdict {
  // A client that sends no certificate is anonymous, which the protocol allows.
  if (chain.length === 0) return { accepted: true };
  if (chain.length > MAX_CLIENT_CHAIN_LENGTH) {
    return reject(
      'chain_too_long',
      `client sent ${chain.length} certificates; at most ${MAX_CLIENT_CHAIN_LENGTH} are accepted`,
    );
  }
  if (Number.isNaN(now.getTime())) return reject('other', 'validation time is not a valid date');
  try {
    return checkChain(chain, now);
  } catch (error) {
    // OpenSSL throws rather than returning false for, e.g., a key type it
    // cannot verify with; that is a malformed chain, not an untrusted one.
    return reject('other', `cannot check client certificate chain: ${describeError(error)}`);
  }
}

export function createClientCertRejectedError(verdict: ClientChainRejection): ClientCertRejectedError {
  return Object.assign(
    new Error(`client certificate rejected (${verdict.reason}): ${verdict.detail}`),
    { code: 'ERR_CLIENT_CERT_REJECTED' as const, reason: verdict.reason },
  );
}

function checkChain(chain: readonly X509Certificate[], now: Date): ClientChainVerdict {
  // Leaf first, and each certificate's dates before its link: when several
  // things are wrong, the one reported is nearest the client's own
  // certificate, which is what its operator can act on.
  for (const [index, cert] of chain.entries()) {
    const label = describeCert(cert, index);
    const dates = checkValidityPeriod(cert, label, now);
    if (dates !== undefined) return dates;
    const issuer = chain[index + 1];
    if (issuer === undefined) {
      if (!isSelfSigned(cert)) {
        return reject('unknown_ca', `${label} is the chain's trust anchor but is not self-signed`);
      }
    } else if (!cert.checkIssued(issuer)) {
      return reject('unknown_ca', `${label} was not issued by ${describeCert(issuer, index + 1)}`);
    } else if (!cert.verify(issuer.publicKey)) {
      return reject('unknown_ca', `${label} does not carry a valid signature by ${describeCert(issuer, index + 1)}`);
    }
  }
  return { accepted: true };
}

function checkValidityPeriod(
  cert: X509Certificate,
  label: string,
  now: Date,
): ClientChainRejection | undefined {
  // Node 20's X509Certificate exposes the validity period only as OpenSSL's
  // text form ("Jan  1 00:00:00 2030 GMT"); the Date getters arrived in
  // Node 22. V8's Date parser reads that form.
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    return reject('other', `${label} has an unreadable validity period (${cert.validFrom} - ${cert.validTo})`);
  }
  // Both bounds are inclusive (RFC 5280, 4.1.2.5).
  if (now.getTime() < notBefore.getTime()) {
    return reject('expired', `${label} is not valid before ${notBefore.toISOString()}`);
  }
  if (now.getTime() > notAfter.getTime()) {
    return reject('expired', `${label} expired at ${notAfter.toISOString()}`);
  }
  return undefined;
}

function isSelfSigned(cert: X509Certificate): boolean {
  // Not checkIssued(cert): OpenSSL's issuer check also demands the keyCertSign
  // key usage, which a lone self-signed client certificate rightly lacks.
  return cert.issuer === cert.subject && cert.verify(cert.publicKey);
}

function describeCert(cert: X509Certificate, index: number): string {
  // Node renders names one attribute per line; a log line wants one line.
  return `certificate #${index} (${cert.subject.split('\n').join(', ')})`;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function reject(reason: ClientChainRejectReason, detail: string): ClientChainRejection {
  return { accepted: false, reason, detail };
}
