// Bench-time certificates, made with the `openssl` command (Debian package openssl) into a
// temporary directory: self-signed ECDSA P-256 and RSA-2048, CN=localhost, valid two days.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export type CertKind = 'ecdsa-p256' | 'rsa-2048';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface CertSet {
  dir: string;
  files: Record<CertKind, CertFiles>;
  cleanup(): void;
}

export function makeCertificates(): CertSet {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-bench-'));
  const make = (name: string, keyArgs: string[]): CertFiles => {
    const cert = path.join(dir, `${name}.crt`);
    const key = path.join(dir, `${name}.key`);
    execFileSync(
      'openssl',
      ['req', '-x509', ...keyArgs, '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return { cert, key };
  };
  const files: Record<CertKind, CertFiles> = {
    'ecdsa-p256': make('ecdsa-p256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']),
    'rsa-2048': make('rsa-2048', ['-newkey', 'rsa:2048']),
  };
  return { dir, files, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
