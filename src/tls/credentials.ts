// Server credentials: loading them from files the way the original does (certificate file,
// then the CA file appended to the chain, then the key) and turning each into a secure
// context once, never per connection.
import crypto from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import { codedError, ErrorCodes } from '../errors.js';
import type { CodedError } from '../errors.js';
import { BoundedFileText } from './bounded_file_text.js';

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

/**
 * What a credential may hold. A real chain is a leaf and a few intermediates, a few KiB; a file
 * past these is refused (ERR_CREDENTIAL_TOO_LARGE) before it is parsed or served: parsing a
 * 10 MB chain blocks the event loop for seconds, and clients refuse a certificate message over
 * OpenSSL's 100 KiB default (ERR_SSL_EXCESSIVE_MESSAGE_SIZE), so serving it would fail them all.
 */
export const CREDENTIAL_LIMITS = {
  /** Bytes in one certificate, CA or key file (its size is checked before it is read). */
  maxFileBytes: 1024 * 1024,
  /** Certificates in the chain served: the certificate file's and the CA file's together. */
  maxChainCertificates: 16,
} as const;

function invalid(file: string, problem: string, cause?: unknown): CodedError {
  return codedError(ErrorCodes.INVALID_CREDENTIAL, `${file}: ${problem}`, { file, ...(cause !== undefined ? { cause } : {}) });
}

function tooLarge(what: string, problem: string, extra: Record<string, unknown> = {}): CodedError {
  return codedError(ErrorCodes.CREDENTIAL_TOO_LARGE, `${what}: ${problem}`, extra);
}

function unreadable(file: string, error: unknown): CodedError {
  const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
  return invalid(file, code === 'ENOENT' ? 'no such file' : `cannot read it (${code})`, error);
}

/** The read's limit and its refusal, for one file. */
function boundedText(file: string, statSize: number): BoundedFileText {
  return new BoundedFileText(CREDENTIAL_LIMITS.maxFileBytes, statSize, (bytes) => {
    throw tooLarge(file, `${bytes} bytes or more, over the limit of ${CREDENTIAL_LIMITS.maxFileBytes} for a certificate or key file`, { file });
  });
}

/** A failure while reading: a refusal stays as it is, anything else says the file is unreadable. */
function readFailure(file: string, error: unknown): CodedError {
  return (error as CodedError).code === ErrorCodes.CREDENTIAL_TOO_LARGE ? (error as CodedError) : unreadable(file, error);
}

/** Reads the file whole, up to the limit: its size is checked first, and again on what came (a file that grew, a pipe). */
function readText(file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    throw unreadable(file, error);
  }
  try {
    const text = boundedText(file, fs.fstatSync(fd).size);
    for (let space = text.space(); space; space = text.space()) text.took(fs.readSync(fd, space, 0, space.length, null));
    return text.text();
  } catch (error) {
    throw readFailure(file, error);
  } finally {
    fs.closeSync(fd);
  }
}

/** readText without blocking the event loop, for reloads while serving. */
async function readTextAsync(file: string): Promise<string> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (error) {
    throw unreadable(file, error);
  }
  try {
    const text = boundedText(file, (await handle.stat()).size);
    for (let space = text.space(); space; space = text.space()) text.took((await handle.read(space, 0, space.length, null)).bytesRead);
    return text.text();
  } catch (error) {
    throw readFailure(file, error);
  } finally {
    await handle.close();
  }
}

function pemBlocks(file: string, text: string): string[] {
  const blocks = text.match(PEM_CERTIFICATE);
  if (!blocks) throw invalid(file, 'not a PEM certificate file (no BEGIN CERTIFICATE block)');
  return blocks;
}

function checkChainLength(what: string, count: number): void {
  if (count > CREDENTIAL_LIMITS.maxChainCertificates) {
    throw tooLarge(what, `a chain of ${count} certificates, over the limit of ${CREDENTIAL_LIMITS.maxChainCertificates}`);
  }
}

function parse(file: string, blocks: readonly string[]): crypto.X509Certificate[] {
  return blocks.map((block, index) => {
    try {
      return new crypto.X509Certificate(block);
    } catch (error) {
      throw invalid(file, `certificate ${index + 1} does not parse: ${(error as Error).message}`, error);
    }
  });
}

interface CredentialTexts {
  cert: string;
  ca?: string;
  key: string;
}

/** Checks what was read (chain length first, before anything is parsed) and builds the credential. */
function credentialOf(files: CredentialFiles, texts: CredentialTexts): ServerCredential {
  const certBlocks = pemBlocks(files.certificateFile, texts.cert);
  const caBlocks = files.caCertificateFile !== undefined && texts.ca !== undefined ? pemBlocks(files.caCertificateFile, texts.ca) : [];
  const chainFiles = files.caCertificateFile !== undefined ? `${files.certificateFile} with ${files.caCertificateFile}` : files.certificateFile;
  checkChainLength(chainFiles, certBlocks.length + caBlocks.length);
  const [leaf] = parse(files.certificateFile, certBlocks);
  let chain = texts.cert.trimEnd() + '\n';
  if (files.caCertificateFile !== undefined && texts.ca !== undefined) {
    parse(files.caCertificateFile, caBlocks);
    chain += texts.ca.trimEnd() + '\n';
  }
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(texts.key);
  } catch (error) {
    throw invalid(files.privateKeyFile, `not a PEM private key: ${(error as Error).message}`, error);
  }
  if (leaf && !leaf.checkPrivateKey(key)) {
    throw invalid(files.privateKeyFile, `the key does not match the certificate in ${files.certificateFile}`);
  }
  return { key: texts.key, cert: chain };
}

/**
 * Reads the certificate file, the CA file appended to the chain, then the key. Each file is at
 * most CREDENTIAL_LIMITS.maxFileBytes and the chain at most maxChainCertificates certificates
 * (ERR_CREDENTIAL_TOO_LARGE); anything else wrong is ERR_INVALID_CREDENTIAL naming the file.
 */
/**
 * The file names, before any is read: a missing or misnamed one (`{ cert, key }`, the names
 * tls.createSecureContext takes for PEM text) is named with the key this function wants.
 */
function checkFileNames(files: CredentialFiles): void {
  if (typeof files !== 'object' || files === null) {
    throw codedError(ErrorCodes.INVALID_OPTION, 'the credential files must be an object { certificateFile, privateKeyFile, caCertificateFile? }');
  }
  const given = files as unknown as Record<string, unknown>;
  const wanted: [keyof CredentialFiles, string, boolean][] = [
    ['certificateFile', 'cert', true],
    ['privateKeyFile', 'key', true],
    ['caCertificateFile', 'ca', false],
  ];
  for (const [name, pemName, required] of wanted) {
    const value = given[name];
    if (value === undefined && !required) continue;
    if (typeof value === 'string' && value !== '') continue;
    const hint = given[pemName] !== undefined ? ` (the '${pemName}' given is PEM text's name: pass the file's path as ${name}, or PEM text to createListener's credential)` : '';
    throw codedError(ErrorCodes.INVALID_OPTION, `${name} must be a file path, got ${value === undefined ? 'nothing' : typeof value}${hint}`, { option: name });
  }
}

export function loadServerCredential(files: CredentialFiles): ServerCredential {
  checkFileNames(files);
  const cert = readText(files.certificateFile);
  const ca = files.caCertificateFile !== undefined ? readText(files.caCertificateFile) : undefined;
  return credentialOf(files, { cert, ...(ca !== undefined ? { ca } : {}), key: readText(files.privateKeyFile) });
}

/** loadServerCredential with the files read asynchronously: for reloads while serving. */
export async function readServerCredential(files: CredentialFiles): Promise<ServerCredential> {
  checkFileNames(files);
  const cert = await readTextAsync(files.certificateFile);
  const ca = files.caCertificateFile !== undefined ? await readTextAsync(files.caCertificateFile) : undefined;
  return credentialOf(files, { cert, ...(ca !== undefined ? { ca } : {}), key: await readTextAsync(files.privateKeyFile) });
}

function fingerprintOf(certificateFile: string, text: string): Buffer {
  const [first] = parse(certificateFile, pemBlocks(certificateFile, text).slice(0, 1));
  if (!first) throw invalid(certificateFile, 'no certificate');
  return crypto.createHash('sha256').update(first.raw).digest();
}

/** SHA-256 of the DER of the first certificate in the file: how clients pin the server. */
export function loadFingerprint(certificateFile: string): Buffer {
  return fingerprintOf(certificateFile, readText(certificateFile));
}

/** loadFingerprint with the file read asynchronously. */
export async function readFingerprint(certificateFile: string): Promise<Buffer> {
  return fingerprintOf(certificateFile, await readTextAsync(certificateFile));
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
  const certText = String(credential.cert);
  if (certText.length > CREDENTIAL_LIMITS.maxFileBytes) {
    throw tooLarge(which, `cert of ${certText.length} bytes, over the limit of ${CREDENTIAL_LIMITS.maxFileBytes}`);
  }
  const blocks = certText.match(PEM_CERTIFICATE) ?? [];
  checkChainLength(which, blocks.length);
  // OpenSSL takes a key of another type than the certificate's without complaint (they fill
  // different slots), and would then serve something else; refuse the pair here.
  const leaf = blocks[0];
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
      // The server's cipher order, as tls.createServer() sets it (README "Cipher order").
      honorCipherOrder: true,
      secureOptions: crypto.constants.SSL_OP_NO_RENEGOTIATION | (purpose.requestClientCert ? crypto.constants.SSL_OP_NO_TICKET : 0),
    });
    builtWithEmptyStore.add(context);
    if (keyType !== undefined) keyTypes.set(context, keyType);
    return context;
  } catch (error) {
    throw codedError(ErrorCodes.INVALID_CREDENTIAL, `${which}: ${(error as Error).message}`, { cause: error });
  }
}
