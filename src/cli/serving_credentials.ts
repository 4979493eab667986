// Which certificates the CLI serves: the files the user named, else the default PKI. Also what
// clients should trust (and its fingerprint) and the name HTTPS answers to, for the banner.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { loadFingerprint, loadServerCredential } from '../index.js';
import type { CredentialFiles, ServerCredential } from '../index.js';
import { ensureDefaultPki } from './default_pki.js';
import type { CliOptions } from './options.js';

export interface ServingCredentials {
  credential: ServerCredential;
  sniCredential?: ServerCredential;
  /** The certificate file clients trust: the CA, or the server certificate itself. */
  trustFile: string;
  /** Whether the first certificate of `trustFile` is self-signed (a root of trust). */
  trustFileIsRoot: boolean;
  fingerprintOf: 'CA' | 'certificate';
  fingerprint: Buffer;
  /** When there is an SNI certificate: the host name it is for, and the file that verifies it. */
  https?: { name: string; trustFile: string };
  notes: string[];
}

/** The first DNS name the certificate is for (a wildcard made concrete), else its CN. */
function nameServedBy(chainPem: string | Buffer): string {
  const leaf = new crypto.X509Certificate(chainPem);
  const dns = (leaf.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice('DNS:'.length));
  const name = dns[0] ?? /(?:^|\n)CN=([^\n]+)/.exec(leaf.subject)?.[1] ?? 'localhost';
  return name.startsWith('*.') ? `www.${name.slice(2)}` : name;
}

/** Whether the first certificate in the file is self-signed: issued by, and signed with, itself. */
function isSelfSigned(file: string): boolean {
  const first = new crypto.X509Certificate(fs.readFileSync(file));
  return first.checkIssued(first) && first.verify(first.publicKey);
}

function fromFiles(files: CredentialFiles): ServerCredential {
  // Throws ERR_INVALID_CREDENTIAL with the file name and the problem.
  return loadServerCredential(files);
}

export async function resolveServingCredentials(options: CliOptions): Promise<ServingCredentials> {
  const notes: string[] = [];
  let primaryFiles = options.credential;
  let sniFiles = options.sniCredential;
  let trustFile: string;
  let sniTrustFile = options.sniCredential?.certificateFile;
  let fingerprintOf: ServingCredentials['fingerprintOf'];
  if (primaryFiles === undefined) {
    const pki = await ensureDefaultPki(options.stateDir);
    primaryFiles = pki.server;
    // The default localhost certificate only stands in when the user named no certificates.
    if (sniFiles === undefined) {
      sniFiles = pki.sni;
      sniTrustFile = pki.caCertificateFile;
    }
    trustFile = pki.caCertificateFile;
    fingerprintOf = 'CA';
    notes.push(`state directory: ${pki.dir}${pki.createdCa ? ' (a new CA was created in it)' : ''}`);
    if (pki.reissued.length > 0) notes.push(`re-issued by the same CA: ${pki.reissued.map((stem) => `${stem}.pem`).join(', ')}`);
  } else {
    trustFile = primaryFiles.caCertificateFile ?? primaryFiles.certificateFile;
    fingerprintOf = primaryFiles.caCertificateFile !== undefined ? 'CA' : 'certificate';
  }
  const credential = fromFiles(primaryFiles);
  const sniCredential = sniFiles !== undefined ? fromFiles(sniFiles) : undefined;
  const fingerprint = loadFingerprint(trustFile); // Throws ERR_INVALID_CREDENTIAL for a bad file.
  const result: ServingCredentials = { credential, trustFile, trustFileIsRoot: isSelfSigned(trustFile), fingerprintOf, fingerprint, notes };
  if (sniCredential !== undefined && sniTrustFile !== undefined) {
    result.sniCredential = sniCredential;
    result.https = { name: nameServedBy(sniCredential.cert), trustFile: sniTrustFile };
  }
  return result;
}
