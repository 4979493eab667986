// One benchmark trial's server process (spawned by benchmarks/run.ts, one process per trial).
//
//   node dist/benchmarks/server.js --contender native|js|node --transport tcp|tls
//                                  [--handler end|hold] [--cert FILE --key FILE]
//                                  [--max-pending-handshakes N] [--max-queued-connections N]
//                                  [--alpn h2,http/1.1] [--proxy v2] [--defer-accept SECONDS]
//
// Listens on 127.0.0.1:0 and prints {"type":"ready","port":..,"pid":..,"versions":{..},
// "admission":..} on stdout. --max-pending-handshakes passes that option to this package's
// TLS listener when the listener knows it (admission control); "admission" says whether it
// did (null when it was not asked for). --max-queued-connections adds maxQueuedConnections
// (load shedding, README "Admission control") to it. Bare Node ignores both. --alpn offers those
// protocols (bare Node: ALPNProtocols; this package: alpn). --defer-accept gives this package's
// listener deferAccept (bare Node has no such option). Then answers one JSON line per command line on stdin:
//   mark    resets the CPU and connection counters (the measured window starts here); its
//           answer carries the listener's stats() at that moment
//   report  {"type":"report","cpuUserUs","cpuSystemUs","rss","heapUsed","external","connections",..}
//           deltas since the last mark, from this process's own process.cpuUsage()
//   gc      runs a full GC when started with --expose-gc (memory scenario), then answers
//   exit    closes the listener and exits (so does EOF on stdin)
//
// Every contender runs the same handler: after the connection is accepted (TCP) or its TLS
// handshake is done, `end`: socket.end('x'); `hold`: socket.write('x') and keep it open until
// the peer closes. The only difference between contenders is who accepts the connection.
import fs from 'node:fs';
import net from 'node:net';
import readline from 'node:readline';
import tls from 'node:tls';
import { createListener, createLocalTCPListener } from '../src/index.js';
import type { ListenerOptions } from '../src/index.js';

export type Contender = 'native' | 'js' | 'node';
export type Transport = 'tcp' | 'tls';
export type HandlerKind = 'end' | 'hold';

const BACKLOG = 1024;
const HOST = '127.0.0.1';

interface Args {
  contender: Contender;
  transport: Transport;
  handler: HandlerKind;
  cert?: string;
  key?: string;
  maxPendingHandshakes?: number;
  maxQueuedConnections?: number;
  /** --alpn h2,http/1.1: the protocols the server offers */
  alpn?: string[];
  /** --proxy v2: each connection starts with a PROXY protocol version 2 header from 127.0.0.1 */
  proxy?: boolean;
  /** --defer-accept N: this package's listener with deferAccept: N */
  deferAccept?: number;
}

function parseArgs(argv: string[]): Args {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i];
    const value = argv[i + 1];
    if (name === undefined || !name.startsWith('--') || value === undefined) throw new Error(`bad arguments: ${argv.join(' ')}`);
    values.set(name.slice(2), value);
  }
  const contender = values.get('contender');
  const transport = values.get('transport');
  const handler = values.get('handler') ?? 'end';
  if (contender !== 'native' && contender !== 'js' && contender !== 'node') throw new Error(`--contender must be native|js|node`);
  if (transport !== 'tcp' && transport !== 'tls') throw new Error('--transport must be tcp|tls');
  if (handler !== 'end' && handler !== 'hold') throw new Error('--handler must be end|hold');
  const cert = values.get('cert');
  const key = values.get('key');
  if (transport === 'tls' && (cert === undefined || key === undefined)) throw new Error('tls needs --cert and --key');
  const pending = values.get('max-pending-handshakes');
  const maxPendingHandshakes = pending !== undefined ? Number(pending) : undefined;
  if (maxPendingHandshakes !== undefined && !(Number.isInteger(maxPendingHandshakes) && maxPendingHandshakes > 0)) {
    throw new Error('--max-pending-handshakes must be a positive integer');
  }
  const queued = values.get('max-queued-connections');
  const maxQueuedConnections = queued !== undefined ? Number(queued) : undefined;
  if (maxQueuedConnections !== undefined && !(Number.isInteger(maxQueuedConnections) && maxQueuedConnections >= 0 && maxPendingHandshakes !== undefined)) {
    throw new Error('--max-queued-connections must be an integer >= 0, with --max-pending-handshakes');
  }
  const defer = values.get('defer-accept');
  const deferAccept = defer !== undefined ? Number(defer) : undefined;
  if (deferAccept !== undefined && !(Number.isInteger(deferAccept) && deferAccept > 0)) throw new Error('--defer-accept must be a positive integer');
  return {
    contender,
    transport,
    handler,
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(maxPendingHandshakes !== undefined ? { maxPendingHandshakes } : {}),
    ...(maxQueuedConnections !== undefined ? { maxQueuedConnections } : {}),
    ...(values.get('alpn') !== undefined ? { alpn: (values.get('alpn') as string).split(',') } : {}),
    ...(values.get('proxy') === 'v2' ? { proxy: true } : {}),
    ...(deferAccept !== undefined ? { deferAccept } : {}),
  };
}

/**
 * Bare Node behind a balancer, as one would write it: a net.Server reads each connection's
 * PROXY v2 header (16 bytes and the length they give; no TLVs are decoded), puts back what
 * followed, and hands the socket to the tls.Server (its 'connection' event builds the TLSSocket).
 */
function behindProxyV2(tlsServer: tls.Server): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => undefined);
    let held: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      held = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
      if (held.length < 16 || held.length < 16 + held.readUInt16BE(14)) return;
      socket.off('data', onData);
      socket.pause();
      const rest = held.subarray(16 + held.readUInt16BE(14));
      if (rest.length > 0) socket.unshift(rest);
      tlsServer.emit('connection', socket);
    };
    socket.on('data', onData);
  });
}

/** True for the error a listener throws for an option it does not know. */
function isUnknownOption(error: unknown, option: string): boolean {
  const coded = error as { code?: unknown; option?: unknown } | null;
  return coded?.code === 'ERR_INVALID_OPTION' && coded.option === option;
}

/**
 * createListener with `maxPendingHandshakes` when asked for and the listener knows it (the
 * admission-control option); without it otherwise. Says which.
 */
function createTlsListener(
  options: ListenerOptions,
  handler: Parameters<typeof createListener>[1],
  maxPendingHandshakes: number | undefined,
  maxQueuedConnections: number | undefined,
): { listener: ReturnType<typeof createListener>; admission: boolean | null } {
  if (maxPendingHandshakes === undefined) return { listener: createListener(options, handler), admission: null };
  const queued = maxQueuedConnections !== undefined ? { maxQueuedConnections } : {};
  try {
    return { listener: createListener({ ...options, maxPendingHandshakes, ...queued } as ListenerOptions, handler), admission: true };
  } catch (error) {
    if (!isUnknownOption(error, 'maxPendingHandshakes') && !isUnknownOption(error, 'maxQueuedConnections')) throw error;
    return { listener: createListener(options, handler), admission: false };
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let connections = 0;
  const noop = (): void => {};

  // The one handler, for every contender.
  const end = (socket: net.Socket): void => {
    connections++;
    socket.on('error', noop);
    socket.end('x');
  };
  const hold = (socket: net.Socket): Promise<void> => {
    connections++;
    socket.on('error', noop);
    socket.write('x');
    return new Promise((resolve) => socket.once('close', () => resolve()));
  };
  const handler = args.handler === 'end' ? end : hold;

  let close: () => Promise<void>;
  let port: number;
  let listenerStats: () => unknown = () => null;
  let admission: boolean | null = null;

  if (args.transport === 'tls') {
    const key = fs.readFileSync(args.key as string);
    const cert = fs.readFileSync(args.cert as string);
    if (args.contender === 'node') {
      const secureContext = tls.createSecureContext({ key, cert });
      const server = tls.createServer({ key, cert, secureContext, ...(args.alpn ? { ALPNProtocols: args.alpn } : {}) }, handler);
      server.on('tlsClientError', noop);
      port = await listenNode(args.proxy ? behindProxyV2(server) : server);
      close = () => new Promise((resolve) => server.close(() => resolve()));
    } else {
      const proxy = args.proxy ? { proxyProtocol: 'v2' as const, trustedProxies: [HOST] } : {};
      const made = createTlsListener({ port: 0, host: HOST, backlog: BACKLOG, backend: args.contender, credential: { key, cert }, ...(args.alpn ? { alpn: args.alpn } : {}), ...proxy, ...(args.deferAccept !== undefined ? { deferAccept: args.deferAccept } : {}) }, handler, args.maxPendingHandshakes, args.maxQueuedConnections);
      const listener = made.listener;
      admission = made.admission;
      port = (await listener.listen()).port;
      close = () => listener.close();
      listenerStats = () => listener.stats();
    }
  } else {
    if (args.contender === 'node') {
      const server = net.createServer(handler);
      port = await listenNode(server);
      close = () => new Promise((resolve) => server.close(() => resolve()));
    } else {
      const listener = createLocalTCPListener({ port: 0, host: HOST, backlog: BACKLOG, backend: args.contender }, handler);
      port = (await listener.listen()).port;
      close = () => listener.close();
      listenerStats = () => listener.stats();
    }
  }

  const send = (message: Record<string, unknown>): void => {
    process.stdout.write(`${JSON.stringify(message)}\n`);
  };
  send({ type: 'ready', port, pid: process.pid, contender: args.contender, versions: process.versions, execPath: process.execPath, admission });

  let markCpu = process.cpuUsage();
  const gc = (globalThis as { gc?: () => void }).gc;
  let exiting = false;
  const exit = (): void => {
    if (exiting) return;
    exiting = true;
    // Held connections would keep close() waiting; the harness has what it needs.
    const timer = setTimeout(() => process.exit(0), 500);
    timer.unref();
    close().then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };

  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = line.trim();
    if (command === 'mark') {
      connections = 0;
      markCpu = process.cpuUsage();
      // The listener's own counters run on: the harness subtracts these from the report's.
      send({ type: 'mark', listener: listenerStats() });
    } else if (command === 'report') {
      const cpu = process.cpuUsage(markCpu);
      const memory = process.memoryUsage();
      send({
        type: 'report',
        cpuUserUs: cpu.user,
        cpuSystemUs: cpu.system,
        rss: memory.rss,
        heapUsed: memory.heapUsed,
        external: memory.external,
        connections,
        listener: listenerStats(),
      });
    } else if (command === 'gc') {
      if (gc) {
        gc();
        gc();
      }
      send({ type: 'gc', collected: gc !== undefined });
    } else if (command === 'exit') {
      exit();
    } else if (command !== '') {
      send({ type: 'error', message: `unknown command ${command}` });
    }
  });
  lines.on('close', exit);
}

function listenNode(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: HOST, backlog: BACKLOG }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('no address'));
      else resolve(address.port);
    });
  });
}

main().catch((error: unknown) => {
  process.stdout.write(`${JSON.stringify({ type: 'fatal', message: error instanceof Error ? error.message : String(error) })}\n`);
  process.exit(1);
});
