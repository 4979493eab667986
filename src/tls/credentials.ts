// Server credentials: loading them from files the way the original does (certificate file,
// then the CA file appended to the chain, then the key) and turning each into a secure
// context once, never per connection.
import crypto from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import { codedError, ErrorCodes } from '../errors.js';
import type { CodedError } from '../errors.js';

/** PEM key and certificate; `cert` may hold a chain (leaf first). */
export interface ServerCredential {
  key: string | Buffer;
  cert: string | Buffer;
}

export interface CredentialFiles {
  certificateFile: string;
  privateKeyFile: string;
  /** Appended to the certificate chain the server sends. */
  caCertificateFile?: string;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function invalid(file: string, problem: string, cause?: unknown): CodedError {
  return codedError(ErrorCodes.INVALID_CREDENTIAL, `${file}: ${problem}`, { file, ...(cause !== undefined ? { cause } : {}) });
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw invalid(file, code === 'ENOENT' ? 'no such file' : `cannot read it (${code})`, error);
  }
}

function certificatesIn(file: string, text: string): crypto.X509Certificate[] {
  const blocks = text.match(PEM_CERTIFICATE);
  if (!blocks) throw invalid(file, 'not a PEM certificate file (no BEGIN CERTIFICATE block)');
  return blocks.map((block, index) => {
    try {
      return new crypto.X509Certificate(block);
    } catch (error) {
      throw invalid(file, `certificate ${index + 1} does not parse: ${(error as Error).message}`, error);
    }
  });
}

export function loadServerCredential(files: CredentialFiles): ServerCredential {
  const certText = readText(files.certificateFile);
  const [leaf] = certificatesIn(files.certificateFile, certText);
  let chain = certText.trimEnd() + '\n';
  if (files.caCertificateFile !== undefined) {
    const caText = readText(files.caCertificateFile);
    certificatesIn(files.caCertificateFile, caText);
    chain += caText.trimEnd() + '\n';
  }
  const keyText = readText(files.privateKeyFile);
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyText);
  } catch (error) {
    throw invalid(files.privateKeyFile, `not a PEM private key: ${(error as Error).message}`, error);
  }
  if (leaf && !leaf.checkPrivateKey(key)) {
    throw invalid(files.privateKeyFile, `the key does not match the certificate in ${files.certificateFile}`);
  }
  return { key: keyText, cert: chain };
}

/** SHA-256 of the DER of the first certificate in the file: how clients pin the server. */
export function loadFingerprint(certificateFile: string): Buffer {
  const [first] = certificatesIn(certificateFile, readText(certificateFile));
  if (!first) throw invalid(certificateFile, 'no certificate');
  return crypto.createHash('sha256').update(first.raw).digest();
}

function isSecureContext(value: unknown): value is tls.SecureContext {
  return typeof value === 'object' && value !== null && 'context' in value && !('key' in value && 'cert' in value);
}

/** The contexts toSecureContext built, whose verification store is empty. */
const builtWithEmptyStore = new WeakSet<tls.SecureContext>();

/**
 * True for a context built here: getPeerCertificate(true) on its connections can only walk
 * certificates the client sent. A caller's context may hold a `ca` or Node's bundled roots.
 */
export function hasEmptyVerificationStore(context: tls.SecureContext): boolean {
  return builtWithEmptyStore.has(context);
}

/** The key type of each context built here (its certificate's: 'ec', 'rsa', 'rsa-pss', ...). */
const keyTypes = new WeakMap<tls.SecureContext, string>();

/**
 * True when both contexts were built here with keys of one type. Node's SNI callback adds the
 * SNI context's certificate to the connection beside the primary's (OpenSSL keeps one per key
 * type) instead of replacing it, so only then is the SNI certificate sure to be the one served.
 */
export function sameKeyType(a: tls.SecureContext, b: tls.SecureContext): boolean {
  const type = keyTypes.get(a);
  return type !== undefined && type === keyTypes.get(b);
}

export interface ContextPurpose {
  /** The listener asks clients for certificates. */
  requestClientCert: boolean;
}

/**
 * Builds the context once; `which` names the option in errors ('credential', 'sniCredential').
 *
 * Client-initiated renegotiation (TLS 1.2) is refused: it costs the server a handshake per
 * request and gives the listener nothing. OpenSSL 3 refuses it by default, but Node turns
 * that off (SSL_OP_ALLOW_CLIENT_RENEGOTIATION) in favour of its own limit; NO_RENEGOTIATION
 * wins over it (checked with OpenSSL 3.0 and 3.5: the first attempt gets a fatal alert).
 *
 * When client certificates are requested, session tickets are off: a resumed session carries
 * only the client's leaf, not the chain it sent, so the chain rules could not be applied
 * (and OpenSSL refuses to resume under a requested certificate without a session id context).
 * Every such connection gets a full handshake and a full chain, as in the original.
 *
 * The verification store is empty (`ca: []`; without `ca` Node would load its bundled roots):
 * client chains are judged by the original's rules, never by a store, and Node appends what
 * it finds in the store to the chain the client sent (see peer_chain.ts). Asking for a client
 * certificate does not depend on it: the listener never lets OpenSSL reject a chain.
 *
 * A caller-built SecureContext is used as it is.
 */
export function toSecureContext(
  credential: ServerCredential | tls.SecureContext,
  which: string,
  purpose: ContextPurpose = { requestClientCert: false },
): tls.SecureContext {
  if (isSecureContext(credential)) return credential;
  if (typeof credential !== 'object' || credential === null || !credential.key || !credential.cert) {
    throw codedError(ErrorCodes.INVALID_CREDENTIAL, `${which} needs key and cert (PEM), or a tls.SecureContext`);
  }
  // OpenSSL takes a key of another type than the certificate's without complaint (they fill
  // different slots), and would then serve something else; refuse the pair here.
  const leaf = String(credential.cert).match(PEM_CERTIFICATE)?.[0];
  let keyType: string | undefined;
  if (leaf !== undefined) {
    let matches: boolean;
    try {
      const certificate = new crypto.X509Certificate(leaf);
      keyType = certificate.publicKey.asymmetricKeyType;
      matches = certificate.checkPrivateKey(crypto.createPrivateKey(credential.key));
    } catch (error) {
      throw codedError(ErrorCodes.INVALID_CREDENTIAL, `${which}: ${(error as Error).message}`, { cause: error });
    }
    if (!matches) throw codedError(ErrorCodes.INVALID_CREDENTIAL, `${which}: the key does not match the certificate`);
  }
  try {
    const context = tls.createSecureContext({
      key: credential.key,
      cert: credential.cert,
      ca: [],
      minVersion: 'TLSv1.2',
      secureOptions: crypto.constants.SSL_OP_NO_RENEGOTIATION | (purpose.requestClientCert ? crypto.constants.SSL_OP_NO_TICKET : 0),
    });
    builtWithEmptyStore.add(context);
    if (keyType !== undefined) keyTypes.set(context, keyType);
    return context;
  } catch (error) {
    throw codedError(ErrorCodes.INVALID_CREDENTIAL, `${which}: ${(error as Error).message}`, { cause: error });
  }
}
