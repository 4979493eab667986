// The command line: flags -> a validated configuration. Every mistake the user can make on
// the command line ends here, with the usage text and exit status 2, before anything starts.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import os from 'node:os';
import path from 'node:path';
import envPaths from 'env-paths';
import type { BackendKind, CredentialFiles } from '../index.js';
import { LOG_FORMATS } from './log.js';
import type { LogFormat } from './log.js';
import { addProductionFlags, productionOptions } from './production_flags.js';
import type { ProductionOptions } from './production_flags.js';

export const EXIT_USAGE = 2;

export interface CliOptions {
  host: string;
  port: number;
  /** Where the default PKI lives (used only for the credentials not given as files). */
  stateDir: string;
  /** --cert/--key/--ca; absent: the default PKI's server certificate. */
  credential?: CredentialFiles;
  /** --sni-cert/--sni-key; absent: the default PKI's localhost certificate, or none with --cert. */
  sniCredential?: CredentialFiles;
  alpn?: string[];
  requestClientCert: boolean;
  handshakeTimeout?: number;
  backend?: BackendKind;
  logTLSErrors: boolean;
  logFormat: LogFormat;
  /** --socket-name: which of several sockets passed by systemd to serve. */
  socketName?: string;
  /** --watch: reload the certificate files when they change (SIGHUP always reloads them). */
  watch: boolean;
  /** --upgrade: take the listening socket over from the process on `controlSocket`. */
  upgrade: boolean;
  /** Where a successor asks for the listening socket (--control-socket; default in stateDir). */
  controlSocket: string;
  /** --proxy-protocol, --trusted-proxies and the admission limits, as listener options. */
  production: ProductionOptions;
  /** --workers: worker threads serving the connections; absent: the main thread serves them. */
  workers?: number;
}

export type ParseOutcome = { kind: 'run'; options: CliOptions } | { kind: 'exit'; code: number };

export interface ParseIo {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_PORT = 8443;
const MAX_ALPN_NAME_BYTES = 255;

/** The state directory when --state-dir is not given: the user's config directory. */
export function defaultStateDir(): string {
  // No suffix: the directory is the package's own, not a Node.js app's ('-nodejs').
  return envPaths('native-tls-listener', { suffix: '' }).config;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidArgumentError('Expected an integer from 0 to 65535 (0 picks a free port).');
  return port;
}

function parseTimeout(value: string): number {
  const ms = Number(value);
  if (!/^\d+$/.test(value) || ms < 1) throw new InvalidArgumentError('Expected a positive whole number of milliseconds.');
  return ms;
}

function parseAlpn(value: string): string[] {
  const protocols = value.split(',').map((name) => name.trim());
  const bad = protocols.find((name) => name.length === 0 || Buffer.byteLength(name) > MAX_ALPN_NAME_BYTES);
  if (bad !== undefined) {
    throw new InvalidArgumentError(`Expected protocol names of 1 to ${MAX_ALPN_NAME_BYTES} bytes, comma-separated (h2,http/1.1).`);
  }
  return protocols;
}

/** The library's own bound on workers.count. */
const MAX_WORKERS = 1024;

function parseWorkers(value: string): number {
  const count = Number(value);
  if (!/^\d+$/.test(value) || count < 1 || count > MAX_WORKERS) {
    throw new InvalidArgumentError(`Expected a whole number of worker threads from 1 to ${MAX_WORKERS} (without a number: one per core).`);
  }
  return count;
}

function parseNonEmpty(value: string): string {
  if (value.length === 0) throw new InvalidArgumentError('Expected a value, got an empty one.');
  return value;
}

interface RawFlags extends ProductionOptions {
  host: string;
  port: number;
  stateDir: string;
  cert?: string;
  key?: string;
  ca?: string;
  sniCert?: string;
  sniKey?: string;
  alpn?: string[];
  requestClientCert?: boolean;
  handshakeTimeout?: number;
  backend?: BackendKind;
  logTlsErrors?: boolean;
  logFormat: LogFormat;
  watch?: boolean;
  socketName?: string;
  upgrade?: boolean;
  controlSocket?: string;
  /** true: --workers without a number. */
  workers?: number | true;
}

function buildProgram(version: string, io: ParseIo): Command {
  const stateDir = defaultStateDir();
  const program = new Command('native-tls-listener')
    .description(
      'A TLS server on the native-tls-listener package. Clients that send no SNI reach a line protocol ' +
        '(stats, quit, help; other lines are echoed); clients that send SNI (browsers, curl https://localhost:PORT) reach HTTPS: ' +
        '/ (live statistics), /stats (JSON), /metrics (Prometheus).',
    )
    .version(version, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .addOption(new Option('--host <address>', 'address or name to listen on').default(DEFAULT_HOST).argParser(parseNonEmpty))
    .addOption(new Option('--port <number>', 'port to listen on; 0 picks a free one').default(DEFAULT_PORT).argParser(parsePort))
    .addOption(
      new Option('--state-dir <dir>', 'where the default CA and certificates are created and kept')
        .argParser(parseNonEmpty)
        .default(stateDir, stateDir),
    )
    .addOption(new Option('--cert <file>', 'server certificate (PEM) for clients without SNI, instead of the default').argParser(parseNonEmpty))
    .addOption(new Option('--key <file>', 'private key (PEM) of --cert').argParser(parseNonEmpty))
    .addOption(new Option('--ca <file>', 'CA certificate (PEM) appended to the chain of --cert; its fingerprint is shown').argParser(parseNonEmpty))
    .addOption(new Option('--sni-cert <file>', 'certificate (PEM) for clients that send SNI; these get HTTPS').argParser(parseNonEmpty))
    .addOption(new Option('--sni-key <file>', 'private key (PEM) of --sni-cert').argParser(parseNonEmpty))
    .addOption(new Option('--alpn <protocols>', 'ALPN protocols, comma-separated; the client\'s first supported one wins').argParser(parseAlpn))
    .addOption(new Option('--request-client-cert', 'ask clients for a certificate (never required)'))
    .addOption(new Option('--handshake-timeout <ms>', 'time allowed for the whole TLS setup (default: 60000)').argParser(parseTimeout))
    .addOption(new Option('--backend <kind>', 'accept backend (default: native when built, else js)').choices(['native', 'js']))
    .addOption(new Option('--log-tls-errors', 'log every failed TLS setup'))
    .addOption(
      new Option('--log-format <format>', 'text: a banner and log lines for people; json: one JSON object per event on stdout')
        .choices(LOG_FORMATS)
        .default('text'),
    )
    .addOption(new Option('--socket-name <name>', 'with several sockets passed by systemd, serve the one with this FileDescriptorName=').argParser(parseNonEmpty))
    .addOption(new Option('--watch', 'reload the certificate files when they change (SIGHUP always reloads them)'))
    .addOption(new Option('--upgrade', 'take the listening socket over from the running server (same --control-socket), which then drains'))
    .addOption(new Option('--control-socket <path>', 'Unix socket where a new version asks for the listening socket (default: STATE_DIR/control.sock)').argParser(parseNonEmpty))
    .addOption(
      new Option(
        '--workers [n]',
        'serve connections on n worker threads, one per core without n (--workers 1: one worker thread; without --workers the main thread serves them)',
      ).argParser(parseWorkers),
    );
  return addProductionFlags(program)
    .addHelpText(
      'after',
      '\nWithout --cert, a CA, a server certificate (127.0.0.1) and a localhost\n' +
        'certificate for SNI clients are created on first run in the state directory\n' +
        'and reused after, so the CA fingerprint stays the same. With --cert and no\n' +
        '--sni-cert, clients with SNI get the line protocol too.\n\n' +
        'Exit status: 0 after a clean shutdown (SIGINT, SIGTERM); 1 when the server\n' +
        'cannot start (bad certificate or key, address in use, permission denied) or\n' +
        'fails, or a second signal cuts the shutdown short; 2 for a bad command line.',
    )
    .showHelpAfterError("Usage: native-tls-listener [options]\nRun 'native-tls-listener --help' for the options.")
    .configureOutput({ writeOut: (text) => io.writeOut(text), writeErr: (text) => io.writeErr(text) })
    .exitOverride();
}

function pairedFiles(
  program: Command,
  [certFlag, cert]: [string, string | undefined],
  [keyFlag, key]: [string, string | undefined],
): { certificateFile: string; privateKeyFile: string } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) {
    program.error(`error: ${cert === undefined ? certFlag : keyFlag} is required with ${cert === undefined ? keyFlag : certFlag}`, {
      exitCode: EXIT_USAGE,
      code: 'cli.unpairedCredential',
    });
  }
  return { certificateFile: cert, privateKeyFile: key };
}

/** Flags that cannot go with --workers, and why (a usage error, before anything starts). */
function checkWorkersFlags(program: Command, flags: RawFlags): void {
  if (flags.workers === undefined) return;
  const conflicts: Array<[boolean, string]> = [
    [flags.backend === 'js', '--workers needs the native backend: --backend js cannot feed worker threads'],
    [flags.upgrade === true, '--upgrade cannot be used with --workers: upgrades without downtime are for single-thread servers'],
    [flags.controlSocket !== undefined, '--control-socket cannot be used with --workers: a server with workers offers no upgrades'],
  ];
  const conflict = conflicts.find(([applies]) => applies);
  if (conflict) program.error(`error: ${conflict[1]}`, { exitCode: EXIT_USAGE, code: 'cli.workersConflict' });
}

function toOptions(program: Command, flags: RawFlags): CliOptions {
  checkWorkersFlags(program, flags);
  const primary = pairedFiles(program, ['--cert', flags.cert], ['--key', flags.key]);
  if (flags.ca !== undefined && primary === undefined) {
    program.error('error: --ca needs --cert and --key', { exitCode: EXIT_USAGE, code: 'cli.caWithoutCert' });
  }
  const sni = pairedFiles(program, ['--sni-cert', flags.sniCert], ['--sni-key', flags.sniKey]);
  const options: CliOptions = {
    host: flags.host,
    port: flags.port,
    stateDir: flags.stateDir,
    requestClientCert: flags.requestClientCert === true,
    logTLSErrors: flags.logTlsErrors === true,
    logFormat: flags.logFormat,
    watch: flags.watch === true,
    upgrade: flags.upgrade === true,
    controlSocket: flags.controlSocket ?? path.join(flags.stateDir, 'control.sock'),
    production: productionOptions(program, flags),
  };
  if (primary) options.credential = flags.ca !== undefined ? { ...primary, caCertificateFile: flags.ca } : primary;
  if (sni) options.sniCredential = sni;
  if (flags.alpn !== undefined) options.alpn = flags.alpn;
  if (flags.handshakeTimeout !== undefined) options.handshakeTimeout = flags.handshakeTimeout;
  if (flags.backend !== undefined) options.backend = flags.backend;
  if (flags.socketName !== undefined) options.socketName = flags.socketName;
  if (flags.workers !== undefined) options.workers = flags.workers === true ? os.availableParallelism() : flags.workers;
  return options;
}

/**
 * Parses `args` (without the node and script paths). Help and version are printed here and
 * end with status 0; every usage error is printed with the help and ends with status 2.
 */
export function parseCommandLine(args: readonly string[], version: string, io: ParseIo): ParseOutcome {
  const program = buildProgram(version, io);
  try {
    program.parse([...args], { from: 'user' });
    return { kind: 'run', options: toOptions(program, program.opts<RawFlags>()) };
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // Commander has already printed the help, the version, or the error and the usage.
    const finished = error.code === 'commander.helpDisplayed' || error.code === 'commander.version';
    return { kind: 'exit', code: finished ? 0 : EXIT_USAGE };
  }
}
