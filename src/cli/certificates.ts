// Issuing the default PKI's certificates in process, with Web Crypto and @peculiar/x509, so a
// first run needs no openssl binary. P-256 keys: cheap to create and to sign with.
import crypto from 'node:crypto';
import type { webcrypto } from 'node:crypto';
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata
// API loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(globalThis.crypto);

/** A certificate and its private key, both PEM (the key as PKCS#8). */
export interface PemPair {
  cert: string;
  key: string;
}

export interface ServerCertificateSpec {
  commonName: string;
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
  validityDays: number;
}

const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const DAY_MS = 24 * 60 * 60 * 1000;
// Back-dated so that a client whose clock lags a little still accepts a fresh certificate.
const BACKDATE_MS = 60 * 60 * 1000;

function generateKeys(): Promise<CryptoKeyPair> {
  // Extractable: the private key is written out as PEM.
  return globalThis.crypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

function randomSerial(): string {
  // Positive (top bit clear) 16-byte serials, as RFC 5280 asks.
  const bytes = crypto.randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + days * DAY_MS) };
}

async function keyPem(privateKey: CryptoKey): Promise<string> {
  const der = await globalThis.crypto.subtle.exportKey('pkcs8', privateKey);
  return `${x509.PemConverter.encode(der, 'PRIVATE KEY')}\n`;
}

/** A self-signed CA that may sign server certificates only (path length 0). */
export async function createCertificateAuthority(commonName: string, validityDays: number): Promise<PemPair> {
  const keys = await generateKeys();
  const name = `CN=${commonName}`;
  const cert = await x509.X509CertificateGenerator.create({
    subject: name,
    issuer: name,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    serialNumber: randomSerial(),
    ...validity(validityDays),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: `${cert.toString('pem')}\n`, key: await keyPem(keys.privateKey) };
}

async function importSigningKey(pem: string): Promise<CryptoKey> {
  // Node parses any PEM flavour; Web Crypto wants PKCS#8 DER and the curve named up front.
  const der = crypto.createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return globalThis.crypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
}

/** A TLS server certificate signed by `ca`, with a fresh key. */
export async function issueServerCertificate(ca: PemPair, spec: ServerCertificateSpec): Promise<PemPair> {
  const caCert = new x509.X509Certificate(ca.cert);
  const [keys, caKey] = await Promise.all([generateKeys(), importSigningKey(ca.key)]);
  const altNames: x509.JsonGeneralNames = [
    ...spec.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...spec.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${spec.commonName}`,
    issuer: caCert.subject,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    serialNumber: randomSerial(),
    ...validity(spec.validityDays),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(altNames),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  return { cert: `${cert.toString('pem')}\n`, key: await keyPem(keys.privateKey) };
}
