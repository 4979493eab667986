// The two ways a listener serves connections, for suites that prove the same behaviour in both:
// 'single' (the handler runs on this thread) and 'workers' (`workers: { count: 2, module }`,
// the native accept thread feeding two worker threads). A suite writes its handler once, as a
// factory, and loops over `listenerModes` as it loops over backends.
//
// In 'workers' mode the factory's source text becomes the default export of a module file
// written to a temporary directory, so the factory must be self-contained: it may use its
// `scope` parameter and globals, never a variable of the test file. `scope.tell(message)` sends
// a message to the test (the list `messages`), through a BroadcastChannel from a worker, at
// once on one thread; `scope.thread` names the thread (0 for the main thread), so keys built
// from it and `info.id` (ids count per worker) are unique across workers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import { BroadcastChannel } from 'node:worker_threads';
import { createListener, createLocalTCPListener, TCPListener, TLSListener } from '../../src/index.js';
import type {
  AuditReport,
  CloseOptions,
  ConnectionInfo,
  ListenerOptions,
  ListenerStats,
  TCPConnectionInfo,
  TCPListenerOptions,
} from '../../src/index.js';

export const listenerModes = ['single', 'workers'] as const;
export type ListenerMode = (typeof listenerModes)[number];

/** Worker threads in 'workers' mode: two, so the books of more than one worker are summed. */
export const WORKER_COUNT = 2;

export interface HandlerScope {
  tell(message: unknown): void;
  /** The serving thread's id (worker_threads.threadId), 0 on the main thread. */
  thread: number;
}

export type HandlerFactory<Info extends { id: number } = { id: number }> = (
  scope: HandlerScope,
) => (socket: net.Socket, info: Info) => void | Promise<void>;

/** What the suites use of a listener, common to TLSListener/TCPListener and WorkersListener. */
export interface ModeListener {
  listen(): Promise<net.AddressInfo>;
  close(options?: CloseOptions): Promise<void>;
  stats(): ListenerStats;
  /** Synchronous on one thread, a promise with workers: `await` it in both modes. */
  audit(): AuditReport | Promise<AuditReport>;
  metrics(labels?: Readonly<Record<string, string>>): string;
  address(): net.AddressInfo | null;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'tlsClientError', listener: (error: Error) => void): unknown;
}

let moduleDir: string | undefined;
let modulesWritten = 0;

/** A module file whose default export is the factory's handler, built in the worker. */
function handlerModuleFile<Info extends { id: number }>(factory: HandlerFactory<Info>, channelName: string): string {
  if (moduleDir === undefined) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-mode-handlers-'));
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    moduleDir = dir;
  }
  const file = path.join(moduleDir, `handler-${++modulesWritten}.mjs`);
  const source = [
    "import { BroadcastChannel, threadId } from 'node:worker_threads';",
    `const channel = new BroadcastChannel(${JSON.stringify(channelName)});`,
    'channel.unref();',
    'const scope = { tell: (message) => channel.postMessage(message), thread: threadId };',
    `export default (${factory.toString()})(scope);`,
    '',
  ].join('\n');
  fs.writeFileSync(file, source);
  return file;
}

let channelsOpened = 0;

/** A listener in one mode, and the messages its handler told the test. */
export class ModeHarness {
  readonly messages: unknown[] = [];
  private channel: BroadcastChannel | null = null;

  constructor(readonly mode: ListenerMode) {}

  /** A TLS listener (createListener's options) serving with the factory's handler. */
  tls(options: ListenerOptions, factory: HandlerFactory<ConnectionInfo>): ModeListener {
    if (this.mode === 'single') return new TLSListener(options, factory(this.localScope()));
    return createListener({ ...options, workers: { count: WORKER_COUNT, module: this.workerModule(factory) } });
  }

  /** A plain-TCP listener (createLocalTCPListener's options) serving with the factory's handler. */
  tcp(options: TCPListenerOptions, factory: HandlerFactory<TCPConnectionInfo>): ModeListener {
    if (this.mode === 'single') return new TCPListener(options, factory(this.localScope()));
    return createLocalTCPListener({ ...options, workers: { count: WORKER_COUNT, module: this.workerModule(factory) } });
  }

  /** Messages told so far that satisfy `test`. */
  told<T>(test: (message: unknown) => message is T): T[] {
    return this.messages.filter(test);
  }

  /** Stops listening for messages (cleanup). */
  close(): void {
    this.channel?.close();
    this.channel = null;
  }

  private localScope(): HandlerScope {
    return { tell: (message) => this.messages.push(message), thread: 0 };
  }

  private workerModule<Info extends { id: number }>(factory: HandlerFactory<Info>): string {
    const name = `ntl-mode-${process.pid}-${++channelsOpened}`;
    this.channel?.close();
    const channel = new BroadcastChannel(name);
    channel.unref();
    channel.onmessage = (event: unknown) => this.messages.push((event as { data: unknown }).data);
    this.channel = channel;
    return handlerModuleFile(factory, name);
  }
}

/** The backends a suite loops over, plus workers (which need the native backend). */
export const backendModes = [
  { backend: 'native', mode: 'single', label: 'native backend' },
  { backend: 'js', mode: 'single', label: 'js backend' },
  { backend: 'native', mode: 'workers', label: `native backend, ${WORKER_COUNT} workers` },
] as const;
