// The certificate chain a client presented, leaf first, as X509Certificate objects: only
// certificates the client itself sent.
//
// Node exposes the chain as getPeerCertificate(true), whose issuerCertificate links OpenSSL
// builds by matching issuers among the certificates the peer sent; the last one links to
// itself when self-signed. When it is not, Node goes on into the context's verification store
// (`ca`, or Node's bundled roots when no `ca` was given) and appends what it finds there, so
// a client sending [leaf, intermediate] would be judged as [leaf, intermediate, root] with a
// root it never sent. The package's own contexts have an empty store (credentials.ts); for a
// caller's context the walk is cut where it leaves what the client sent.
import { X509Certificate } from 'node:crypto';
import type tls from 'node:tls';

/** More than the longest chain the policy accepts, so "too long" is still seen as such. */
const MAX_WALK = 16;

/**
 * @param storeIsEmpty the serving context's verification store is known to be empty, so the
 *   walk cannot have left what the client sent.
 */
export function peerCertificateChain(socket: tls.TLSSocket, storeIsEmpty: boolean): X509Certificate[] {
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
  if (storeIsEmpty || chain.length < 2) return chain;
  // The store's certificates can only follow the client's own (Node looks there only once
  // the client's certificates are used up), so the chain ends at the first one not sent.
  const sent = sentCertificates(socket);
  const firstNotSent = chain.findIndex((cert) => !sent.has(cert.fingerprint256));
  return firstNotSent === -1 ? chain : chain.slice(0, firstNotSent);
}

/**
 * Fingerprints of the certificates in the client's Certificate message. getPeerX509Certificate()
 * links each certificate to the next one sent, never to the store. On Node 20 this read
 * consumes Node's copy of the chain: later getPeerCertificate(true) calls on the socket see
 * only the leaf (Node 24 copies it instead), which is why it is not done when not needed.
 */
function sentCertificates(socket: tls.TLSSocket): Set<string> {
  const sent = new Set<string>();
  let current = socket.getPeerX509Certificate();
  while (current !== undefined && !sent.has(current.fingerprint256) && sent.size < MAX_WALK) {
    sent.add(current.fingerprint256);
    current = current.issuerCertificate;
  }
  return sent;
}
