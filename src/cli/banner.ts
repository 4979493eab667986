// What the CLI tells the user: on start, where it listens and how to try it (commands that
// verify the server against its CA, so they show the fingerprint is the real one); on stop,
// the final statistics.
import net from 'node:net';
import type { ListenerStats } from '../index.js';

export interface BannerFacts {
  version: string;
  /** The bound address (the real port when 0 was asked for). */
  address: net.AddressInfo;
  backend: string;
  /** --workers: the worker threads serving connections; absent: the main thread serves them. */
  workers?: number;
  /** SHA-256 of the first certificate in `trustFile`. */
  fingerprint: Buffer;
  /** What the fingerprint is of ('CA' for the default PKI or --ca, else 'certificate'). */
  fingerprintOf: string;
  /** The file a client trusts: the CA, or the certificate itself. */
  trustFile: string;
  /**
   * Whether the first certificate in `trustFile` is self-signed (a root). When it is not (a
   * leaf or an intermediate), OpenSSL verifies against it only with -partial_chain.
   */
  trustFileIsRoot: boolean;
  /** When there is an SNI credential: the name HTTPS is served for, and the file that verifies it. */
  https?: { name: string; trustFile: string };
  /** Extra lines (where the default PKI lives, what was just created). */
  notes: readonly string[];
}

/** `AB:CD:...`, the way `openssl x509 -fingerprint -sha256` prints it. */
export function formatFingerprint(digest: Buffer): string {
  return [...digest].map((byte) => byte.toString(16).padStart(2, '0').toUpperCase()).join(':');
}

/** An address a local client can connect to: wildcards become loopback. */
export function connectHost(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1';
  if (address === '::') return '::1';
  return address;
}

function isLoopback(host: string): boolean {
  return host === '::1' || host.startsWith('127.');
}

function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A shell word: quoted only when it needs to be. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./[\]-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function opensslCommand(facts: Pick<BannerFacts, 'address' | 'trustFile' | 'trustFileIsRoot'>): string {
  const host = connectHost(facts.address.address);
  // s_client sends no SNI for an IP address, so this reaches the line protocol. Without
  // -verify_return_error, -quiet goes on after a failed verification and proves nothing.
  const words = ['openssl', 's_client', '-quiet', '-verify_return_error', '-connect', hostPort(host, facts.address.port), '-CAfile', facts.trustFile];
  // A served certificate that is not a root (given with --cert and no --ca) is a trust anchor
  // only with -partial_chain; curl sets that flag by itself.
  if (!facts.trustFileIsRoot) words.push('-partial_chain');
  return words.map(shellWord).join(' ');
}

export function curlCommand(address: net.AddressInfo, https: { name: string; trustFile: string }): string {
  const host = connectHost(address.address);
  const { port } = address;
  const { name } = https;
  const words = ['curl', '--cacert', https.trustFile];
  // `localhost` finds a loopback listener by itself; any other pairing needs curl told where.
  if (!(name === 'localhost' && isLoopback(host))) words.push('--resolve', `${name}:${port}:${net.isIPv6(host) ? `[${host}]` : host}`);
  words.push(`https://${name}:${port}/`);
  return words.map(shellWord).join(' ');
}

/** The banner's fingerprint line, printed again after a certificate reload. */
export function fingerprintLine(fingerprintOf: string, fingerprint: Buffer): string {
  return `${fingerprintOf} fingerprint (SHA-256): ${formatFingerprint(fingerprint)}`;
}

/** 'native backend', or 'native backend, 2 worker threads'. */
export function servedBy(facts: Pick<BannerFacts, 'backend' | 'workers'>): string {
  if (facts.workers === undefined) return `${facts.backend} backend`;
  return `${facts.backend} backend, ${facts.workers} worker thread${facts.workers === 1 ? '' : 's'}`;
}

export function startBanner(facts: BannerFacts): string {
  const lines = [
    `native-tls-listener ${facts.version}`,
    `listening on ${hostPort(facts.address.address, facts.address.port)} (${servedBy(facts)})`,
    fingerprintLine(facts.fingerprintOf, facts.fingerprint),
    ...facts.notes,
    'clients without SNI get a line protocol (stats, quit, help; other lines are echoed):',
    `  ${opensslCommand(facts)}`,
  ];
  if (facts.https !== undefined) {
    lines.push('clients with SNI get HTTPS (/, /stats, /metrics):', `  ${curlCommand(facts.address, facts.https)}`);
  } else {
    lines.push('no SNI certificate (--sni-cert), so clients with SNI get the line protocol too');
  }
  lines.push('stop with Ctrl-C (SIGINT) or SIGTERM');
  return `${lines.join('\n')}\n`;
}

export function finalStatsLine(stats: ListenerStats): string {
  return `final stats: ${JSON.stringify(stats)}\n`;
}
