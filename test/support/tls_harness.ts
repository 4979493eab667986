// Real TLS clients and a TLS listener under test, for the TLS listener suites. Every wait is
// bounded, every socket, listener and child process is registered with a Cleanup so a failing
// test still releases it.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import type { Writable } from 'node:stream';
import tls from 'node:tls';
import { TLSListener } from '../../src/tls/tls_listener.js';
import type { ConnectionHandler, ListenerOptions, TlsListenerDependencies } from '../../src/tls/tls_listener.js';
import type { ConnectionInfo } from '../../src/tls/tls_setup.js';
import type { SetupFailureInfo } from '../../src/listener.js';
import { expect } from 'chai';
import { Cleanup, DEFAULT_WAIT_MS, waitUntil, within } from './waiting.js';
import { Client } from './sockets.js';

export { Cleanup, DEFAULT_WAIT_MS, delay, waitUntil, within } from './waiting.js';

export const BACKENDS = ['native', 'js'] as const;

export type ReportedError = Error & { code?: string; reason?: string; cause?: unknown };

export interface RunningListener {
  readonly listener: TLSListener;
  readonly port: number;
  /** Every `tlsClientError`, in order. */
  readonly clientErrors: Array<{ error: ReportedError; info: SetupFailureInfo }>;
  /** Every `connectionError`, in order. */
  readonly connectionErrors: Array<{ error: ReportedError; info: ConnectionInfo | { id: number } }>;
  /** What the handler was given, in order. */
  readonly served: ConnectionInfo[];
  /** Resolves with the next `tlsClientError` (or one already seen and not yet taken). */
  nextClientError(timeoutMs?: number): Promise<{ error: ReportedError; info: SetupFailureInfo }>;
  /** Resolves once the handler has been given `count` connections in all. */
  servedCount(count: number, timeoutMs?: number): Promise<ConnectionInfo>;
}

/**
 * Starts a TLSListener on 127.0.0.1 with a free port; closes it at cleanup. The handler is
 * wrapped only to record what it is given.
 */
export async function startListener(
  cleanup: Cleanup,
  options: Omit<ListenerOptions, 'port' | 'host'>,
  handler: ConnectionHandler,
  dependencies?: TlsListenerDependencies,
): Promise<RunningListener> {
  const served: ConnectionInfo[] = [];
  const listener = new TLSListener({ ...options, host: '127.0.0.1', port: 0 }, (socket, info) => {
    served.push(info);
    return handler(socket, info);
  }, dependencies);
  cleanup.add(() => listener.close());
  const clientErrors: RunningListener['clientErrors'] = [];
  const connectionErrors: RunningListener['connectionErrors'] = [];
  listener.on('tlsClientError', (error: ReportedError, info: SetupFailureInfo) => clientErrors.push({ error, info }));
  listener.on('connectionError', (error: ReportedError, info: ConnectionInfo | { id: number }) => connectionErrors.push({ error, info }));
  const address = await within(listener.listen(), 'the listener to start');
  let taken = 0;
  return {
    listener,
    port: address.port,
    clientErrors,
    connectionErrors,
    served,
    async nextClientError(timeoutMs = DEFAULT_WAIT_MS) {
      await waitUntil(() => clientErrors.length > taken, 'a tlsClientError', timeoutMs);
      const next = clientErrors[taken++];
      if (next === undefined) throw new Error('no tlsClientError recorded');
      return next;
    },
    async servedCount(count, timeoutMs = DEFAULT_WAIT_MS) {
      await waitUntil(() => served.length >= count, `the handler to be given ${count} connection(s)`, timeoutMs);
      const info = served[count - 1];
      if (info === undefined) throw new Error(`no connection ${count}`);
      return info;
    },
  };
}

/** A handler that writes `text` and leaves the connection open (the client or close() ends it). */
export function greet(text: string): ConnectionHandler {
  return (socket) => {
    socket.write(text);
  };
}

/** A tls.connect client that also records how the handshake went. */
export class TlsClient extends Client<tls.TLSSocket> {
  secure = false;
  session: Buffer | undefined;
  /** The client's port, kept once connected (the socket forgets it when closed). */
  localPort: number | undefined;

  constructor(socket: tls.TLSSocket) {
    super(socket);
    socket.once('connect', () => {
      this.localPort = socket.localPort;
    });
    socket.on('secureConnect', () => {
      this.secure = true;
    });
    socket.on('session', (session: Buffer) => {
      this.session = session;
    });
  }

  /** Resolves once the handshake finished; rejects if the connection failed first. */
  async whenSecure(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    await waitUntil(() => this.secure || this.closed, 'the TLS handshake', timeoutMs);
    if (!this.secure) throw new Error(`the handshake did not finish: ${this.error?.message ?? 'closed'}`);
  }

  /** Resolves once `text` arrived; rejects if the connection closed without it. */
  async receive(text: string, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    await waitUntil(() => this.received.includes(text) || this.closed, `${JSON.stringify(text)} from the server`, timeoutMs);
    if (!this.received.includes(text)) {
      throw new Error(`closed before ${JSON.stringify(text)} arrived (got ${JSON.stringify(this.received)}, error ${this.error?.message ?? 'none'})`);
    }
  }

  /** The subject CN of the certificate the server presented. */
  serverCommonName(): string | undefined {
    const cn = this.socket.getPeerCertificate().subject?.CN;
    return Array.isArray(cn) ? cn[0] : cn;
  }
}

/**
 * Connects with tls.connect to 127.0.0.1:port, without verifying the server (the tests check
 * which certificate it presented instead). `servername` unset sends no SNI.
 */
export function tlsConnect(cleanup: Cleanup, port: number, options: tls.ConnectionOptions = {}): TlsClient {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
  const client = new TlsClient(socket);
  cleanup.add(() => socket.destroy());
  return client;
}

/** Opens a raw TCP connection to 127.0.0.1:port and keeps what happens to it. */
export class RawClient {
  received = Buffer.alloc(0);
  closed = false;
  error: NodeJS.ErrnoException | null = null;
  /** The client's port (the socket forgets it when closed). */
  readonly localPort: number | undefined;
  private readonly closedPromise: Promise<void>;

  constructor(readonly socket: net.Socket) {
    this.localPort = socket.localPort;
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.error = error;
    });
    this.closedPromise = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  whenClosed(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    return within(this.closedPromise, 'the raw connection to be closed by the server', timeoutMs);
  }
}

export async function rawConnect(cleanup: Cleanup, port: number): Promise<RawClient> {
  const socket = net.connect({ host: '127.0.0.1', port });
  cleanup.add(() => socket.destroy());
  await within(
    new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    }),
    'a raw connection',
  );
  return new RawClient(socket);
}

/**
 * The first TLS record a real tls.connect client sends (its ClientHello), captured by a plain
 * TCP server on loopback.
 */
export async function captureClientHello(options: tls.ConnectionOptions = {}): Promise<Buffer> {
  let resolveHello: (hello: Buffer) => void = () => undefined;
  const hello = new Promise<Buffer>((resolve) => {
    resolveHello = resolve;
  });
  const server = net.createServer((socket) => {
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= 5 && buffered.length >= 5 + buffered.readUInt16BE(3)) {
        resolveHello(buffered.subarray(0, 5 + buffered.readUInt16BE(3)));
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const { port } = server.address() as net.AddressInfo;
  const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
  client.on('error', () => undefined);
  try {
    return await within(hello, 'a ClientHello from tls.connect');
  } finally {
    client.destroy();
    server.close();
  }
}

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Once stdout satisfies this, stdin is closed so the program ends on its own. */
  until?: (stdout: string) => boolean;
  /** Close stdin at once (for programs that do not read it). */
  closeStdin?: boolean;
  /** Hands over stdin, for a test that types into the program (s_client's `R`, `Q`). */
  typeInto?: (stdin: Writable) => void;
  timeoutMs?: number;
}

const running = new Set<ChildProcess>();

/** Kills every child process still running (for an after() hook). */
export function killChildren(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/**
 * Runs a program and resolves with how it ended. Stdin stays open until `until` holds (or at
 * once with closeStdin); after `timeoutMs` the program is killed and the promise rejects.
 */
export function run(cleanup: Cleanup, command: string, args: readonly string[], options: RunOptions = {}): Promise<ProcessResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  cleanup.add(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  const closeStdin = (): void => {
    if (!child.stdin.writableEnded) child.stdin.end();
  };
  child.stdin.on('error', () => undefined); // the program may exit before reading stdin
  if (options.closeStdin === true) closeStdin();
  options.typeInto?.(child.stdin);
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
    if (options.until?.(stdout) === true) closeStdin();
  });
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise<ProcessResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      running.delete(child);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * `openssl s_client` against 127.0.0.1:port. `args` come after -connect; stdin is held open
 * until `until` sees what the test waits for, then closed so s_client ends with close_notify.
 * When the server closes first, s_client ends by itself.
 */
export function sClient(
  cleanup: Cleanup,
  port: number,
  args: readonly string[],
  until: (stdout: string) => boolean,
  options: Pick<RunOptions, 'typeInto'> = {},
): Promise<ProcessResult> {
  return run(cleanup, 'openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { ...options, until, timeoutMs: 10_000 });
}

/** The subject line s_client prints for the server certificate ("subject=CN = x, O = y"). */
export function sClientSubject(stdout: string): string | undefined {
  return /^subject=(.*)$/m.exec(stdout)?.[1];
}

/** The ALPN outcome s_client prints: the protocol, or false for "No ALPN negotiated". */
export function sClientAlpn(stdout: string): string | false | undefined {
  if (/^No ALPN negotiated$/m.test(stdout)) return false;
  return /^ALPN protocol: (.*)$/m.exec(stdout)?.[1];
}

/** Number of certificates in s_client -showcerts output. */
export function sClientCertCount(stdout: string): number {
  return stdout.split('-----BEGIN CERTIFICATE-----').length - 1;
}

/** accepted = closed + active, and nothing leaked. */
export function expectBalanced(listener: Pick<TLSListener, 'stats'>): void {
  const stats = listener.stats();
  expect(stats.accepted, JSON.stringify(stats)).to.equal(stats.closed + stats.active);
  expect(stats.leaked, JSON.stringify(stats)).to.equal(0);
}

/** A Cleanup run after each test of the enclosing describe (call it in the describe body). */
export function useCleanup(): Cleanup {
  const cleanup = new Cleanup();
  afterEach(async function () {
    this.timeout(20_000);
    await cleanup.run();
  });
  after(killChildren);
  return cleanup;
}
