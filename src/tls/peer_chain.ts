// The certificate chain a client presented, leaf first, as X509Certificate objects.
// Node exposes it only as getPeerCertificate(true), whose issuerCertificate links OpenSSL
// builds by matching issuers among the certificates the peer sent; the last one links to
// itself when self-signed.
import { X509Certificate } from 'node:crypto';
import type tls from 'node:tls';

/** More than the longest chain the policy accepts, so "too long" is still seen as such. */
const MAX_WALK = 16;

export function peerCertificateChain(socket: tls.TLSSocket): X509Certificate[] {
  const leaf = socket.getPeerCertificate(true);
  if (!leaf || !leaf.raw) return [];
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let current: tls.DetailedPeerCertificate | undefined = leaf;
  while (current?.raw && !seen.has(current.fingerprint256) && chain.length < MAX_WALK) {
    seen.add(current.fingerprint256);
    chain.push(new X509Certificate(current.raw));
    current = current.issuerCertificate;
  }
  return chain;
}
