// The PKI the CLI serves with when no certificate is given: a CA, a server certificate for
// clients without SNI and a localhost certificate for clients with SNI, created on first run
// in the state directory and reused after, so the CA fingerprint clients pin stays the same.
// Server certificates are re-issued (by the same CA) when they are missing, broken or close
// to expiry; the CA itself is never replaced behind the user's back.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { CredentialFiles } from '../index.js';
import { createCertificateAuthority, issueServerCertificate } from './certificates.js';
import type { PemPair, ServerCertificateSpec } from './certificates.js';
import { StartupError } from './startup_error.js';

export interface DefaultPki {
  dir: string;
  caCertificateFile: string;
  /** Served to clients that send no SNI; the chain includes the CA. */
  server: CredentialFiles;
  /** Served to clients that send SNI (localhost). */
  sni: CredentialFiles;
  /** This run created the CA (so its fingerprint is new). */
  createdCa: boolean;
  /** Server certificates this run issued again ('server', 'sni'). */
  reissued: string[];
  /**
   * Server certificates due for renewal that could not be written (a read-only state
   * directory) and are served as they are while still valid: stem and the reason.
   */
  notRenewed: Array<{ stem: string; reason: string }>;
}

type LeafName = 'server' | 'sni';

const CA_COMMON_NAME = 'native-tls-listener CA';
const CA_VALIDITY_DAYS = 3650;
// Within the 398 days browsers allow a server certificate.
const LEAF_VALIDITY_DAYS = 397;
const RENEW_BEFORE_MS = 30 * 24 * 60 * 60 * 1000;

const LEAVES: Record<LeafName, ServerCertificateSpec> = {
  server: { commonName: 'native-tls-listener server', dnsNames: [], ipAddresses: ['127.0.0.1', '::1'], validityDays: LEAF_VALIDITY_DAYS },
  sni: { commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: [], validityDays: LEAF_VALIDITY_DAYS },
};

const KEY_MODE = 0o600;
const CERT_MODE = 0o644;
const DIR_MODE = 0o700;

function certFile(dir: string, stem: string): string {
  return path.join(dir, `${stem}.pem`);
}

function keyFile(dir: string, stem: string): string {
  return path.join(dir, `${stem}.key`);
}

function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** Writes via a temporary file and rename, so a reader never sees half a file. */
async function writeAtomically(file: string, text: string, mode: number): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temporary, text, { mode });
  await fs.rename(temporary, file);
}

async function writePair(dir: string, stem: string, pair: PemPair): Promise<void> {
  // Key first: a certificate on disk always has its key beside it.
  await writeAtomically(keyFile(dir, stem), pair.key, KEY_MODE);
  await writeAtomically(certFile(dir, stem), pair.cert, CERT_MODE);
}

async function createAll(): Promise<Record<'ca' | LeafName, PemPair>> {
  const ca = await createCertificateAuthority(CA_COMMON_NAME, CA_VALIDITY_DAYS);
  const [server, sni] = await Promise.all([issueServerCertificate(ca, LEAVES.server), issueServerCertificate(ca, LEAVES.sni)]);
  return { ca, server, sni };
}

const CLAIM_WAIT_MS = 10_000;
const CLAIM_POLL_MS = 50;

async function exists(file: string): Promise<boolean> {
  return (await readIfPresent(file)) !== undefined;
}

/**
 * Takes ca.key for this run with link(2), which fails with EEXIST when another run already
 * placed one: the first to link writes the rest, the others wait for its ca.pem. A ca.key that
 * stays alone past CLAIM_WAIT_MS was left by a run that died; this run then replaces it.
 */
async function claim(staging: string, dir: string): Promise<boolean> {
  try {
    await fs.link(keyFile(staging, 'ca'), keyFile(dir, 'ca'));
    return true;
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') throw error;
  }
  for (let waited = 0; waited < CLAIM_WAIT_MS; waited += CLAIM_POLL_MS) {
    if (await exists(certFile(dir, 'ca'))) return false;
    await new Promise((resolve) => setTimeout(resolve, CLAIM_POLL_MS));
  }
  await fs.rename(keyFile(staging, 'ca'), keyFile(dir, 'ca'));
  return true;
}

/**
 * Puts a fresh PKI in `dir`. It is built in a temporary directory inside `dir` (not beside it:
 * with systemd's StateDirectory= the service user owns the state directory but may not write
 * its parent) and moved into place, CA certificate last, since its presence is what marks the
 * PKI as made. Two first runs at once cannot mix their CAs: ca.key is claimed with link(2)
 * first, and the loser finds the winner's. Returns false when another run made it.
 */
async function createInto(dir: string): Promise<boolean> {
  const pki = await createAll();
  await fs.mkdir(dir, { recursive: true, mode: DIR_MODE });
  const staging = await fs.mkdtemp(path.join(dir, '.new-'));
  try {
    for (const stem of ['ca', 'server', 'sni'] as const) {
      await fs.writeFile(keyFile(staging, stem), pki[stem].key, { mode: KEY_MODE });
      await fs.writeFile(certFile(staging, stem), pki[stem].cert, { mode: CERT_MODE });
    }
    if (!(await claim(staging, dir))) return false;
    // Files of the user's already in `dir` (other than ours) stay beside them.
    for (const stem of ['server', 'sni'] as const) {
      await fs.rename(keyFile(staging, stem), keyFile(dir, stem));
      await fs.rename(certFile(staging, stem), certFile(dir, stem));
    }
    await fs.rename(certFile(staging, 'ca'), certFile(dir, 'ca'));
    return true;
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

function loadCa(dir: string, certText: string, keyText: string | undefined): { pair: PemPair; cert: crypto.X509Certificate } {
  const fix = `delete ${dir} to create a new CA (its fingerprint will change)`;
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(certText);
  } catch (error) {
    throw new StartupError(`${certFile(dir, 'ca')}: not a PEM certificate (${(error as Error).message}); ${fix}`, { cause: error });
  }
  if (keyText === undefined) throw new StartupError(`${keyFile(dir, 'ca')}: missing, so no certificate can be issued; ${fix}`);
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyText);
  } catch (error) {
    throw new StartupError(`${keyFile(dir, 'ca')}: not a PEM private key (${(error as Error).message}); ${fix}`, { cause: error });
  }
  if (!cert.checkPrivateKey(key)) throw new StartupError(`${keyFile(dir, 'ca')}: does not match ${certFile(dir, 'ca')}; ${fix}`);
  return { pair: { cert: certText, key: keyText }, cert };
}

/**
 * What the stored leaf is: 'usable' (parses, matches its key, signed by the CA, not about to
 * expire), 'expiring' (all that, but within the renewal window: still servable), or 'unusable'.
 */
async function leafState(dir: string, stem: LeafName, ca: crypto.X509Certificate): Promise<'usable' | 'expiring' | 'unusable'> {
  const [certText, keyText] = await Promise.all([readIfPresent(certFile(dir, stem)), readIfPresent(keyFile(dir, stem))]);
  if (certText === undefined || keyText === undefined) return 'unusable';
  try {
    const cert = new crypto.X509Certificate(certText);
    const sound = cert.checkPrivateKey(crypto.createPrivateKey(keyText)) && cert.checkIssued(ca) && cert.verify(ca.publicKey);
    const left = Date.parse(cert.validTo) - Date.now();
    if (!sound || left <= 0) return 'unusable';
    return left > RENEW_BEFORE_MS ? 'usable' : 'expiring';
  } catch {
    return 'unusable';
  }
}

/** Errors that mean the state directory may not be written (read-only mount, permissions). */
const NOT_WRITABLE = new Set(['EROFS', 'EACCES', 'EPERM']);

function filesIn(dir: string, createdCa: boolean, reissued: LeafName[], notRenewed: DefaultPki['notRenewed'] = []): DefaultPki {
  const caCertificateFile = certFile(dir, 'ca');
  const files = (stem: LeafName): CredentialFiles => ({
    certificateFile: certFile(dir, stem),
    privateKeyFile: keyFile(dir, stem),
    caCertificateFile,
  });
  return { dir, caCertificateFile, server: files('server'), sni: files('sni'), createdCa, reissued, notRenewed };
}

async function ensure(dir: string): Promise<DefaultPki> {
  const caText = await readIfPresent(certFile(dir, 'ca'));
  if (caText === undefined) {
    if (await createInto(dir)) return filesIn(dir, true, []);
    return ensure(dir);
  }
  const ca = loadCa(dir, caText, await readIfPresent(keyFile(dir, 'ca')));
  const reissued: LeafName[] = [];
  const notRenewed: DefaultPki['notRenewed'] = [];
  // Nothing is written while every certificate is usable, so a read-only state directory works.
  for (const stem of ['server', 'sni'] as const) {
    const state = await leafState(dir, stem, ca.cert);
    if (state === 'usable') continue;
    try {
      await writePair(dir, stem, await issueServerCertificate(ca.pair, LEAVES[stem]));
      reissued.push(stem);
    } catch (error) {
      const code = errnoCode(error);
      if (state !== 'expiring' || code === undefined || !NOT_WRITABLE.has(code)) throw error;
      notRenewed.push({ stem, reason: code });
    }
  }
  return filesIn(dir, false, reissued, notRenewed);
}

/** The default PKI in `dir`, created or repaired as needed. Rejects with a StartupError. */
export async function ensureDefaultPki(dir: string): Promise<DefaultPki> {
  const absolute = path.resolve(dir);
  try {
    return await ensure(absolute);
  } catch (error) {
    if (error instanceof StartupError) throw error;
    // Node's file system errors name the code, the problem and the path.
    const reason = error instanceof Error ? error.message : String(error);
    throw new StartupError(`cannot keep the default certificates in ${absolute}: ${reason}`, { cause: error });
  }
}
