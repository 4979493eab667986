// Not an example itself: the certificates the examples serve with. It reuses the CLI's
// default PKI (a CA, a server certificate for 127.0.0.1 and one for localhost), kept in the
// directory given as the second argument, or in a fresh temporary one. Your own server
// would load certificates it already has, with loadServerCredential().
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDefaultPki } from '../../src/cli/default_pki.js';
import type { DefaultPki } from '../../src/cli/default_pki.js';

/** `node dist/examples/<name>.js [port] [pki-dir]`: the port (0 picks a free one) and the PKI. */
export async function exampleSetup(): Promise<{ port: number; pki: DefaultPki }> {
  const port = Number(process.argv[2] ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`not a port: ${process.argv[2]}`);
  const dir = process.argv[3] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'native-tls-listener-example-'));
  const pki = await ensureDefaultPki(dir);
  console.log(`CA certificate: ${pki.caCertificateFile}`);
  return { port, pki };
}
