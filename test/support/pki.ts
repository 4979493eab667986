// Test PKI generated at run time, so no key material is committed and no
// certificate in the fixtures can silently expire between releases.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { webcrypto } from 'node:crypto';
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata
// API loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

// No DOM lib in this project: the Web Crypto types live in Node's namespace.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type EcKeyGenParams = webcrypto.EcKeyGenParams;
type RsaHashedKeyGenParams = webcrypto.RsaHashedKeyGenParams;
type EcdsaParams = webcrypto.EcdsaParams;

x509.cryptoProvider.set(globalThis.crypto);

export interface CertAndKey {
  /** Certificate, PEM. */
  readonly cert: string;
  /** Private key, PKCS#8 PEM ("PRIVATE KEY"). */
  readonly key: string;
}

export interface ClientChain {
  /** Certificates as PEM, leaf first, each signed by the next. */
  readonly certs: readonly string[];
  /** Private key of the leaf, PKCS#8 PEM. */
  readonly key: string;
  /** `certs` concatenated, as a TLS client sends them. */
  readonly chainPem: string;
}

export interface TestPki {
  readonly ca: CertAndKey;
  readonly server: CertAndKey;
  readonly sni: CertAndKey;
  readonly rsaServer: CertAndKey;
  readonly otherCa: CertAndKey;
  /** [leaf, otherCa]: well formed, but rooted outside `ca`. */
  readonly foreignClient: ClientChain;
  /** A single self-signed client certificate. */
  readonly clientChain1: ClientChain;
  /** [leaf, ca2] */
  readonly clientChain2: ClientChain;
  /** [leaf, id, ca3] */
  readonly clientChain3: ClientChain;
  /** [leaf, id, net, ca4] */
  readonly clientChain4: ClientChain;
  /** [leaf, a, b, c, root]: valid, but longer than the listener accepts. */
  readonly clientChain5: ClientChain;
  /** [leaf, ca] with the leaf's notAfter in the past. */
  readonly expiredClient: ClientChain;
  /** [leaf, ca] with the leaf's notBefore in the future. */
  readonly notYetValidClient: ClientChain;
  /**
   * [leaf, ca] where the leaf names `ca` as its issuer but was signed by
   * another key, so only the signature check can catch it.
   */
  readonly unknownCaClient: ClientChain;
}

const EC_KEY: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const RSA_KEY: RsaHashedKeyGenParams = {
  name: 'RSASSA-PKCS1-v1_5',
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: 'SHA-256',
};
// Every issuer in this PKI holds a P-256 key.
const SIGNING_ALGORITHM: EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const ORG = 'O=native-tls-listener tests';
const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

interface Identity {
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
}

interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

interface CertSpec {
  readonly subject: string;
  readonly keys: CryptoKeyPair;
  /** Omitted: self-signed. */
  readonly issuer?: Identity;
  /** Forge the signature with this key while still naming `issuer`. */
  readonly forgedSigningKey?: CryptoKey;
  readonly role: 'ca' | 'server' | 'client';
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly validity?: Validity;
}

function generateKeys(params: EcKeyGenParams | RsaHashedKeyGenParams = EC_KEY): Promise<CryptoKeyPair> {
  // Extractable, because the keys are handed to TLS as PEM.
  return globalThis.crypto.subtle.generateKey(params, true, ['sign', 'verify']);
}

function defaultValidity(): Validity {
  // Back-dated so a peer whose clock lags slightly still accepts the chain.
  const now = Date.now();
  return { notBefore: new Date(now - HOUR_MS), notAfter: new Date(now + 365 * DAY_MS) };
}

async function issue(spec: CertSpec): Promise<Identity> {
  const { keys, issuer, role } = spec;
  const signer = issuer?.keys ?? keys;
  const isCa = role === 'ca';
  const rsa = keys.publicKey.algorithm.name === 'RSASSA-PKCS1-v1_5';
  const leafUsage = rsa
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(isCa, undefined, true),
    new x509.KeyUsagesExtension(
      isCa ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : leafUsage,
      true,
    ),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  // A forged certificate carries no authority key identifier: with one, OpenSSL
  // would already reject the issuer link, and the signature check would go
  // untested.
  if (spec.forgedSigningKey === undefined) {
    extensions.push(
      await x509.AuthorityKeyIdentifierExtension.create(signer.publicKey),
    );
  }
  if (role !== 'ca') {
    extensions.push(
      new x509.ExtendedKeyUsageExtension([
        role === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
      ]),
    );
  }
  const altNames: x509.JsonGeneralNames = [
    ...(spec.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(spec.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (altNames.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(altNames));

  const validity = spec.validity ?? defaultValidity();
  const cert = await x509.X509CertificateGenerator.create({
    subject: spec.subject,
    issuer: issuer?.cert.subject ?? spec.subject,
    publicKey: keys.publicKey,
    signingKey: spec.forgedSigningKey ?? signer.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    serialNumber: randomSerial(),
    notBefore: validity.notBefore,
    notAfter: validity.notAfter,
    extensions,
  });
  return { cert, keys };
}

function randomSerial(): string {
  // 16 random bytes keep every certificate's serial distinct, which tests use
  // to tell which certificate a peer presented.
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(16))).toString('hex');
}

async function keyPem(keys: CryptoKeyPair): Promise<string> {
  const der = await globalThis.crypto.subtle.exportKey('pkcs8', keys.privateKey);
  return `${x509.PemConverter.encode(der, 'PRIVATE KEY')}\n`;
}

function certPem(identity: Identity): string {
  return `${identity.cert.toString('pem')}\n`;
}

async function certAndKey(identity: Identity): Promise<CertAndKey> {
  return { cert: certPem(identity), key: await keyPem(identity.keys) };
}

async function clientChain(chain: readonly Identity[]): Promise<ClientChain> {
  const [leaf] = chain;
  if (leaf === undefined) throw new Error('a client chain needs a leaf');
  const certs = chain.map(certPem);
  return { certs, key: await keyPem(leaf.keys), chainPem: certs.join('') };
}

/**
 * Builds a chain whose last name is a self-signed root and whose other names
 * are intermediates, each signed by the next, ending in a client leaf.
 */
async function issueClientChain(label: string, caNames: readonly string[]): Promise<Identity[]> {
  const keys = await Promise.all([...caNames, label].map(() => generateKeys()));
  const issued: Identity[] = [];
  let issuer: Identity | undefined;
  for (const [index, name] of [...caNames].reverse().entries()) {
    const caKeys = keys[index];
    if (caKeys === undefined) throw new Error('key generation returned too few keys');
    issuer = await issue({ subject: `CN=${name}, ${ORG}`, keys: caKeys, issuer, role: 'ca' });
    issued.unshift(issuer);
  }
  const leafKeys = keys[caNames.length];
  if (leafKeys === undefined) throw new Error('key generation returned too few keys');
  const leaf = await issue({ subject: `CN=${label}, ${ORG}`, keys: leafKeys, issuer, role: 'client' });
  return [leaf, ...issued];
}

async function generateTestPki(): Promise<TestPki> {
  const now = Date.now();
  const [caKeys, serverKeys, sniKeys, rsaKeys, otherCaKeys, forgerKeys] = await Promise.all([
    generateKeys(),
    generateKeys(),
    generateKeys(),
    generateKeys(RSA_KEY),
    generateKeys(),
    generateKeys(),
  ]);
  const ca = await issue({ subject: `CN=Test Root CA, ${ORG}`, keys: caKeys, role: 'ca' });
  const otherCa = await issue({ subject: `CN=Unrelated Root CA, ${ORG}`, keys: otherCaKeys, role: 'ca' });

  const [server, sni, rsaServer] = await Promise.all([
    issue({
      subject: `CN=server.test, ${ORG}`,
      keys: serverKeys,
      issuer: ca,
      role: 'server',
      dnsNames: ['server.test', 'localhost'],
      ipAddresses: ['127.0.0.1'],
    }),
    issue({
      subject: `CN=sni.test, ${ORG}`,
      keys: sniKeys,
      issuer: ca,
      role: 'server',
      dnsNames: ['sni.test', 'localhost'],
    }),
    issue({
      subject: `CN=rsa.server.test, ${ORG}`,
      keys: rsaKeys,
      issuer: ca,
      role: 'server',
      dnsNames: ['server.test', 'localhost'],
      ipAddresses: ['127.0.0.1'],
    }),
  ]);

  const [chain1, chain2, chain3, chain4, chain5, foreign] = await Promise.all([
    issueClientChain('client-chain-1', []),
    issueClientChain('client-chain-2', ['Client CA 2']),
    issueClientChain('client-chain-3', ['Client ID CA 3', 'Client CA 3']),
    issueClientChain('client-chain-4', ['Client ID CA 4', 'Client Net CA 4', 'Client CA 4']),
    issueClientChain('client-chain-5', ['Client A CA 5', 'Client B CA 5', 'Client C CA 5', 'Client Root CA 5']),
    generateKeys()
      .then((keys) => issue({ subject: `CN=foreign-client, ${ORG}`, keys, issuer: otherCa, role: 'client' }))
      .then((leaf) => [leaf, otherCa]),
  ]);

  const [expiredKeys, futureKeys, impostorKeys] = await Promise.all([generateKeys(), generateKeys(), generateKeys()]);
  const [expired, notYetValid, unknownCa] = await Promise.all([
    issue({
      subject: `CN=expired-client, ${ORG}`,
      keys: expiredKeys,
      issuer: ca,
      role: 'client',
      validity: { notBefore: new Date(now - 30 * DAY_MS), notAfter: new Date(now - DAY_MS) },
    }),
    issue({
      subject: `CN=not-yet-valid-client, ${ORG}`,
      keys: futureKeys,
      issuer: ca,
      role: 'client',
      validity: { notBefore: new Date(now + DAY_MS), notAfter: new Date(now + 30 * DAY_MS) },
    }),
    issue({
      subject: `CN=unknown-ca-client, ${ORG}`,
      keys: impostorKeys,
      issuer: ca,
      forgedSigningKey: forgerKeys.privateKey,
      role: 'client',
    }),
  ]);

  return {
    ca: await certAndKey(ca),
    server: await certAndKey(server),
    sni: await certAndKey(sni),
    rsaServer: await certAndKey(rsaServer),
    otherCa: await certAndKey(otherCa),
    foreignClient: await clientChain(foreign),
    clientChain1: await clientChain(chain1),
    clientChain2: await clientChain(chain2),
    clientChain3: await clientChain(chain3),
    clientChain4: await clientChain(chain4),
    clientChain5: await clientChain(chain5),
    expiredClient: await clientChain([expired, ca]),
    notYetValidClient: await clientChain([notYetValid, ca]),
    unknownCaClient: await clientChain([unknownCa, ca]),
  };
}

/**
 * [leaf, intermediate], where the intermediate names the CA certificate `issuerPem` (one of
 * Node's bundled roots, say) as its issuer but is signed by a key of its own, since the
 * issuer's key is not ours, and carries no authority key identifier. OpenSSL finds issuers by
 * name (and key type), so a verification store holding `issuerPem` links the chain to it.
 */
export async function clientChainNamingIssuer(label: string, issuerPem: string): Promise<ClientChain> {
  const [forgerKeys, intermediateKeys, leafKeys] = await Promise.all([generateKeys(), generateKeys(), generateKeys()]);
  const named: Identity = { cert: new x509.X509Certificate(issuerPem), keys: forgerKeys };
  const intermediate = await issue({
    subject: `CN=${label} CA, ${ORG}`,
    keys: intermediateKeys,
    issuer: named,
    forgedSigningKey: forgerKeys.privateKey,
    role: 'ca',
  });
  const leaf = await issue({ subject: `CN=${label}, ${ORG}`, keys: leafKeys, issuer: intermediate, role: 'client' });
  return clientChain([leaf, intermediate]);
}

let pending: Promise<TestPki> | undefined;

/** The run's PKI; generated on first call and shared by every later caller. */
export async function createTestPki(): Promise<TestPki> {
  pending ??= generateTestPki().catch((error: unknown) => {
    // A failed generation must not poison every later test with the same error.
    pending = undefined;
    throw error;
  });
  return pending;
}

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface ChainFiles {
  /** The whole chain, leaf first, in one PEM file. */
  readonly chain: string;
  readonly key: string;
}

export interface PkiFiles {
  readonly dir: string;
  readonly ca: CertFiles;
  readonly server: CertFiles;
  readonly sni: CertFiles;
  readonly rsaServer: CertFiles;
  readonly otherCa: CertFiles;
  readonly foreignClient: ChainFiles;
  readonly clientChain1: ChainFiles;
  readonly clientChain2: ChainFiles;
  readonly clientChain3: ChainFiles;
  readonly clientChain4: ChainFiles;
  readonly clientChain5: ChainFiles;
  readonly expiredClient: ChainFiles;
  readonly notYetValidClient: ChainFiles;
  readonly unknownCaClient: ChainFiles;
}

/**
 * Writes the PKI into `dir` as `<name>.pem` / `<name>.key` (kebab-case:
 * `ca.pem`, `server.key`, `rsa-server.pem`, `client-chain-2.pem`, ...), for
 * tests that drive the openssl command or exercise loading from files.
 */
export async function writePkiFiles(dir: string): Promise<PkiFiles> {
  const pki = await createTestPki();
  await mkdir(dir, { recursive: true });
  const write = async (stem: string, cert: string, key: string): Promise<CertFiles> => {
    const paths = { cert: join(dir, `${stem}.pem`), key: join(dir, `${stem}.key`) };
    await writeFile(paths.cert, cert);
    await writeFile(paths.key, key, { mode: 0o600 });
    return paths;
  };
  const single = (stem: string, { cert, key }: CertAndKey): Promise<CertFiles> => write(stem, cert, key);
  const chain = async (stem: string, { chainPem, key }: ClientChain): Promise<ChainFiles> => {
    const paths = await write(stem, chainPem, key);
    return { chain: paths.cert, key: paths.key };
  };
  return {
    dir,
    ca: await single('ca', pki.ca),
    server: await single('server', pki.server),
    sni: await single('sni', pki.sni),
    rsaServer: await single('rsa-server', pki.rsaServer),
    otherCa: await single('other-ca', pki.otherCa),
    foreignClient: await chain('foreign-client', pki.foreignClient),
    clientChain1: await chain('client-chain-1', pki.clientChain1),
    clientChain2: await chain('client-chain-2', pki.clientChain2),
    clientChain3: await chain('client-chain-3', pki.clientChain3),
    clientChain4: await chain('client-chain-4', pki.clientChain4),
    clientChain5: await chain('client-chain-5', pki.clientChain5),
    expiredClient: await chain('expired-client', pki.expiredClient),
    notYetValidClient: await chain('not-yet-valid-client', pki.notYetValidClient),
    unknownCaClient: await chain('unknown-ca-client', pki.unknownCaClient),
  };
}
