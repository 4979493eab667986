// Real loopback clients and small waiting helpers. Every wait is bounded: a test that would
// hang fails with a message saying what it was waiting for instead.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_WAIT_MS, waitUntil, within } from './waiting.js';
import type { Cleanup } from './waiting.js';

export { Cleanup, DEFAULT_WAIT_MS, delay, waitUntil, within } from './waiting.js';

/**
 * A client socket (plain or TLS) that keeps every byte it receives and remembers how the
 * connection ended. The other suites' clients build on this one.
 */
export class Client<S extends net.Socket = net.Socket> {
  received = '';
  ended = false;
  closed = false;
  error: NodeJS.ErrnoException | null = null;
  /** Settles when the socket has closed (unbounded: see whenClosed for a bounded wait). */
  readonly closing: Promise<void>;

  constructor(readonly socket: S) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.received += chunk;
    });
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.error = error;
    });
    this.closing = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  /** The first line the server sent (without the newline). */
  async line(index = 0, timeoutMs = DEFAULT_WAIT_MS): Promise<string> {
    await waitUntil(
      () => this.received.split('\n').length > index + 1 || this.closed,
      `line ${index} from the server (got ${JSON.stringify(this.received)})`,
      timeoutMs,
    );
    const line = this.received.split('\n')[index];
    if (line === undefined || this.received.split('\n').length <= index + 1) {
      throw new Error(`the connection closed before line ${index} arrived (got ${JSON.stringify(this.received)})`);
    }
    return line;
  }

  whenClosed(timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    return within(this.closing, 'the client connection to close', timeoutMs);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Connects to host:port (from `localAddress` when given: any of 127.0.0.0/8 on Linux);
 * resolves once connected, rejects with the connect error.
 */
export function connect(port: number, host = '127.0.0.1', timeoutMs = DEFAULT_WAIT_MS, localAddress?: string): Promise<Client> {
  return within(
    new Promise<Client>((resolve, reject) => {
      const socket = net.connect({ port, host, ...(localAddress !== undefined ? { localAddress } : {}) });
      const onError = (error: Error): void => {
        socket.destroy();
        reject(error);
      };
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        resolve(new Client(socket));
      });
    }),
    `a connection to ${host}:${port}`,
    timeoutMs,
  );
}

/** The code of the error a connection attempt ends with, or 'connected'. */
export async function connectOutcome(port: number, host = '127.0.0.1'): Promise<string> {
  try {
    const client = await connect(port, host);
    client.destroy();
    return 'connected';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

/** Whether a plain net.Server can bind host:port right now (it is closed again before returning). */
export function canBind(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A net.Server listening on host:0, to occupy a port or to lend its descriptor. */
export function listeningServer(host = '127.0.0.1'): Promise<{ server: net.Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen({ port: 0, host }, () => {
      const address = server.address() as net.AddressInfo;
      resolve({ server, port: address.port });
    });
  });
}

export function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}

/** The descriptor under a Node socket or server (Node keeps it on the internal handle). */
export function handleFd(target: net.Socket | net.Server): number {
  const handle = (target as unknown as { _handle?: { fd?: unknown } | null })._handle;
  if (typeof handle?.fd !== 'number' || handle.fd < 0) throw new Error('no descriptor on this handle');
  return handle.fd;
}


/**
 * Writes `bytes` in pieces of `pieceSize` as fast as the socket drains, so the reader sees
 * them cut where the test chooses (as far as TCP keeps write boundaries). Stops early when
 * the socket closes or `stop()` holds; resolves with the bytes written.
 */
export async function writeInPieces(socket: net.Socket, bytes: Buffer, pieceSize: number, stop: () => boolean = () => false): Promise<number> {
  let at = 0;
  while (at < bytes.length && !socket.destroyed && !stop()) {
    const piece = bytes.subarray(at, at + pieceSize);
    at += piece.length;
    if (!socket.write(piece)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
  }
  return at;
}

/**
 * A net.Server listening on a Unix-domain socket, to lend its descriptor to a child process: the
 * socket stays reachable at `reachableAt` after this server closes its own copy.
 */
export async function unixServer(cleanup: Cleanup): Promise<{ server: net.Server; reachableAt: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-unix-'));
  cleanup.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  const server = net.createServer();
  cleanup.add(() => closeServer(server));
  const bound = path.join(dir, 'bound.sock');
  await within(new Promise<void>((resolve) => server.listen(bound, resolve)), 'a Unix-domain server to listen');
  // Closing the server unlinks the path it bound; the socket, still held by whoever has the
  // descriptor, keeps this name.
  const reachableAt = path.join(dir, 'adopted.sock');
  fs.renameSync(bound, reachableAt);
  return { server, reachableAt };
}

/** Connects to a Unix-domain socket; resolves once connected. */
export function unixClient(socketPath: string): Promise<Client> {
  return within(
    new Promise<Client>((resolve, reject) => {
      const socket = net.connect(socketPath);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new Client(socket));
      });
    }),
    `a connection to ${socketPath}`,
  );
}
