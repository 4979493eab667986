// The churn test's clients, run in a child process (forked with IPC) so they get a core of
// their own and their descriptors stay out of the server process's count.
// The parent sends one ChurnPlan; this process runs every client, sends one ChurnReport and
// exits. Every client is bounded by CLIENT_LIMIT_MS; one that hits it is reported, not hung.
import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

export const CHURN_KINDS = ['handshake', 'handlerThrows', 'certRejected', 'stall', 'reset', 'garbage', 'connectClose'] as const;
export type ChurnKind = (typeof CHURN_KINDS)[number];

export interface ChurnPlan {
  port: number;
  caCert: string;
  /** The client chain the server must reject (expired leaf), and its key. */
  rejectedChain: string;
  rejectedKey: string;
  counts: Record<ChurnKind, number>;
  /** Connections in flight at once, stalls excluded. */
  window: number;
  /** Stalls in flight at once (they run alongside the rest). */
  stallWindow: number;
  seed: number;
}

export interface ChurnReport {
  /** kind -> outcome -> count */
  outcomes: Record<ChurnKind, Record<string, number>>;
  elapsedMs: number;
}

const CLIENT_LIMIT_MS = 20_000;
/** The ALPN protocol that makes the churn handler throw. */
export const THROW_PROTOCOL = 'throw';
export const SERVE_PROTOCOL = 'churn';

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A real ClientHello, captured from Node's TLS client by a server that only listens. */
function captureClientHello(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        resolve(chunk);
        socket.destroy();
        server.close();
      });
    });
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      const client = tls.connect({ port, host: '127.0.0.1', ALPNProtocols: [SERVE_PROTOCOL], rejectUnauthorized: false });
      client.on('error', () => undefined);
      client.on('close', () => client.destroy());
    });
  });
}

type Outcome = string;

/** Resolves with an outcome once the socket is closed, or 'client-limit' after CLIENT_LIMIT_MS. */
function settle(socket: net.Socket, describe: () => Outcome): Promise<Outcome> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('client-limit');
    }, CLIENT_LIMIT_MS);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(describe());
    });
  });
}

function tlsClient(plan: ChurnPlan, protocol: string, withRejectedCert: boolean): Promise<Outcome> {
  const options: tls.ConnectionOptions = {
    port: plan.port,
    host: '127.0.0.1',
    ca: plan.caCert,
    ALPNProtocols: [protocol],
  };
  if (withRejectedCert) {
    options.cert = plan.rejectedChain;
    options.key = plan.rejectedKey;
  }
  const socket = tls.connect(options);
  let secure = false;
  let received = '';
  let ended = false;
  let error: string | undefined;
  socket.once('secureConnect', () => {
    secure = true;
  });
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    received += chunk;
  });
  socket.on('end', () => {
    ended = true;
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    error ??= e.code ?? e.message;
  });
  return settle(socket, () => {
    if (!secure) return `no-handshake${error !== undefined ? `:${error}` : ''}`;
    if (received === 'ok\n' && ended && error === undefined) return 'served';
    if (received === '') return 'closed-after-handshake';
    return `unexpected:${JSON.stringify(received)}:${error ?? ''}`;
  });
}

function plainClient(plan: ChurnPlan, onConnect: (socket: net.Socket) => void): Promise<Outcome> {
  const socket = net.connect({ port: plan.port, host: '127.0.0.1' });
  let connected = false;
  socket.once('connect', () => {
    connected = true;
    onConnect(socket);
  });
  // Read (and drop) what comes, as a real client does: a server that has read everything this
  // client sent closes with a FIN, which a paused socket would never surface as 'end'.
  socket.resume();
  return settle(socket, () => (connected ? 'closed' : 'not-connected'));
}

function garbage(random: () => number, index: number): Buffer {
  if (index % 2 === 0) return Buffer.from('GET / HTTP/1.1\r\nHost: churn.test\r\n\r\n');
  const bytes = crypto.randomBytes(16 + Math.floor(random() * 200));
  // Never a TLS handshake record type (22), and never a TLS record version (3.x), so both the
  // listener's own hello reader (js backend) and OpenSSL (which sees the native backend's bytes
  // unchanged) refuse it at the record header instead of waiting for the rest of a record.
  bytes[0] = Math.floor(random() * 22);
  bytes[1] = 4 + Math.floor(random() * 252);
  return bytes;
}

function runOne(kind: ChurnKind, index: number, plan: ChurnPlan, hello: Buffer, random: () => number): Promise<Outcome> {
  switch (kind) {
    case 'handshake':
      return tlsClient(plan, SERVE_PROTOCOL, false);
    case 'handlerThrows':
      return tlsClient(plan, THROW_PROTOCOL, false);
    case 'certRejected':
      return tlsClient(plan, SERVE_PROTOCOL, true);
    case 'stall': {
      const started = Date.now();
      return plainClient(plan, () => undefined).then(
        (outcome) => (outcome === 'closed' ? 'closed-by-server' : outcome) + (Date.now() - started < 50 ? '-early' : ''),
      );
    }
    case 'reset': {
      // Part of a real ClientHello, then an RST.
      const cut = 1 + Math.floor(random() * (hello.length - 1));
      return plainClient(plan, (socket) => {
        socket.write(hello.subarray(0, cut), () => socket.resetAndDestroy());
      });
    }
    case 'garbage':
      return plainClient(plan, (socket) => socket.write(garbage(random, index)));
    case 'connectClose':
      return plainClient(plan, (socket) => socket.destroy());
  }
}

async function pool(kinds: readonly ChurnKind[], width: number, run: (kind: ChurnKind, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < kinds.length) {
      const index = next++;
      const kind = kinds[index];
      if (kind !== undefined) await run(kind, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, kinds.length) }, lane));
}

export async function runChurn(plan: ChurnPlan): Promise<ChurnReport> {
  const random = mulberry32(plan.seed);
  const hello = await captureClientHello();
  const mixed: ChurnKind[] = [];
  const stalls: ChurnKind[] = [];
  for (const kind of CHURN_KINDS) {
    for (let i = 0; i < plan.counts[kind]; i++) (kind === 'stall' ? stalls : mixed).push(kind);
  }
  for (let i = mixed.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [mixed[i], mixed[j]] = [mixed[j] as ChurnKind, mixed[i] as ChurnKind];
  }
  const outcomes = Object.fromEntries(CHURN_KINDS.map((kind) => [kind, {}])) as Record<ChurnKind, Record<string, number>>;
  const record = async (kind: ChurnKind, index: number): Promise<void> => {
    const outcome = await runOne(kind, index, plan, hello, random);
    outcomes[kind][outcome] = (outcomes[kind][outcome] ?? 0) + 1;
  };
  const started = Date.now();
  await Promise.all([pool(mixed, plan.window, record), pool(stalls, plan.stallWindow, record)]);
  return { outcomes, elapsedMs: Date.now() - started };
}

// Run as a forked child: one plan in, one report out.
if (process.send !== undefined && process.argv[2] === 'churn-child') {
  process.once('message', (plan: ChurnPlan) => {
    const reply = (message: { report: ChurnReport } | { error: string }): void => {
      process.send?.(message, undefined, {}, () => process.disconnect());
    };
    runChurn(plan).then(
      (report) => reply({ report }),
      (error: unknown) => reply({ error: String(error instanceof Error ? error.stack : error) }),
    );
  });
}
