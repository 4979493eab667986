// Hand-built ClientHellos: a real client's hello (captureClientHello), taken apart and put back
// together with one thing changed, and the server's first answer to bytes sent raw.
import net from 'node:net';
import type { Cleanup } from './waiting.js';
import { within } from './waiting.js';

export const EXTENSION_SERVER_NAME = 0;
export const EXTENSION_ALPN = 16;
export const EXTENSION_PADDING = 21;

export interface HelloParts {
  /** The ClientHello body up to its extensions block (version, random, session, ciphers, compression). */
  head: Buffer;
  extensions: Array<{ type: number; data: Buffer }>;
}

/** A one-record hello (as tls.connect sends it) taken apart. */
export function splitHello(record: Buffer): HelloParts {
  const message = record.subarray(5);
  const body = message.subarray(4, 4 + message.readUIntBE(1, 3));
  let at = 2 + 32;
  at += 1 + (body[at] ?? 0);
  at += 2 + body.readUInt16BE(at);
  at += 1 + (body[at] ?? 0);
  const head = body.subarray(0, at);
  const extensions: HelloParts['extensions'] = [];
  const end = at + 2 + body.readUInt16BE(at);
  at += 2;
  while (at < end) {
    const type = body.readUInt16BE(at);
    const length = body.readUInt16BE(at + 2);
    extensions.push({ type, data: body.subarray(at + 4, at + 4 + length) });
    at += 4 + length;
  }
  return { head, extensions };
}

function u16(value: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(value);
  return out;
}

/** The handshake message (header included) of `parts`. */
export function handshakeOf(parts: HelloParts): Buffer {
  const extensions = Buffer.concat(parts.extensions.map(({ type, data }) => Buffer.concat([u16(type), u16(data.length), data])));
  const body = Buffer.concat([parts.head, u16(extensions.length), extensions]);
  const header = Buffer.from([1, 0, 0, 0]);
  header.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([header, body]);
}

/** `message` in handshake records of at most `size` bytes each. */
export function inRecords(message: Buffer, size = 16384): Buffer {
  const records: Buffer[] = [];
  for (let at = 0; at < message.length; at += size) {
    const fragment = message.subarray(at, at + size);
    records.push(Buffer.from([22, 3, 1, fragment.length >> 8, fragment.length & 0xff]), fragment);
  }
  return Buffer.concat(records);
}

/** `parts` with extension `type`'s data replaced (or the extension added at the end). */
export function withExtension(parts: HelloParts, type: number, data: Buffer): HelloParts {
  const found = parts.extensions.some((extension) => extension.type === type);
  const extensions = found
    ? parts.extensions.map((extension) => (extension.type === type ? { type, data } : extension))
    : [...parts.extensions, { type, data }];
  return { head: parts.head, extensions };
}

/** A server_name extension naming `name` (its bytes as given). */
export function serverNameData(name: Buffer): Buffer {
  return Buffer.concat([u16(name.length + 3), Buffer.from([0]), u16(name.length), name]);
}

/**
 * `parts` with `bytes` (even) of unassigned cipher suites before the client's own: with the
 * padding extension, how a hello grows past 64 KiB (each list is at most 65535 bytes).
 */
export function withMoreCiphers(parts: HelloParts, bytes: number): HelloParts {
  let at = 2 + 32;
  at += 1 + (parts.head[at] ?? 0);
  const own = parts.head.subarray(at + 2, at + 2 + parts.head.readUInt16BE(at));
  const filler = Buffer.alloc(bytes);
  // 0x0100-0x55ff: unassigned in the IANA registry.
  for (let i = 0; i < bytes; i += 2) filler.writeUInt16BE(0x0100 + ((i / 2) % 0x5500), i);
  const head = Buffer.concat([parts.head.subarray(0, at), u16(bytes + own.length), filler, own, parts.head.subarray(at + 2 + own.length)]);
  return { head, extensions: parts.extensions };
}

/** `parts` with a padding extension that fills the extensions block to its 65,535-byte limit. */
export function fullyPadded(parts: HelloParts): HelloParts {
  const others = parts.extensions.filter((extension) => extension.type !== EXTENSION_PADDING);
  const used = others.reduce((sum, extension) => sum + 4 + extension.data.length, 0);
  return withExtension({ ...parts, extensions: others }, EXTENSION_PADDING, Buffer.alloc(0xffff - used - 4));
}

/** The hello grown to `total` stream bytes (records included) with a padding extension. */
export function paddedTo(parts: HelloParts, total: number): Buffer {
  const base = handshakeOf(withExtension(parts, EXTENSION_PADDING, Buffer.alloc(0))).length;
  const records = Math.ceil(total / 16389);
  const padding = total - records * 5 - base;
  const message = handshakeOf(withExtension(parts, EXTENSION_PADDING, Buffer.alloc(padding)));
  return inRecords(message);
}

/**
 * The server's first answer to `bytes`: 'alert:<description>', 'handshake:<message type>'
 * (2 is a ServerHello), or 'closed' when it closes without a whole record. With `end`, the
 * client's FIN follows the bytes.
 */
export async function firstAnswer(cleanup: Cleanup, port: number, bytes: Buffer, { end = false } = {}): Promise<string> {
  return describeRecord(await firstRecord(cleanup, port, bytes, end));
}

function describeRecord(held: Buffer | undefined): string {
  if (held === undefined) return 'closed';
  const type = held[0];
  if (type === 21) return `alert:${held[6] ?? '?'}`;
  if (type === 22) return `handshake:${held[5] ?? '?'}`;
  return `record:${type ?? '?'}`;
}

/**
 * The protocol a TLS 1.2 ServerHello (the server's first answer to `bytes`) selects with ALPN:
 * 'none' without the extension; firstAnswer's answer when the first record is not a ServerHello.
 */
export async function serverHelloProtocol(cleanup: Cleanup, port: number, bytes: Buffer): Promise<string> {
  const held = await firstRecord(cleanup, port, bytes);
  if (held === undefined || held[0] !== 22 || held[5] !== 2) return describeRecord(held);
  const body = held.subarray(9, 9 + held.readUIntBE(6, 3));
  let at = 2 + 32;
  at += 1 + (body[at] ?? 0) + 2 + 1;
  if (at >= body.length) return 'none';
  const end = at + 2 + body.readUInt16BE(at);
  for (at += 2; at < end; at += 4 + body.readUInt16BE(at + 2)) {
    // ALPN's data: the list's length, then one name after its length byte.
    if (body.readUInt16BE(at) === EXTENSION_ALPN) return body.subarray(at + 7, at + 4 + body.readUInt16BE(at + 2)).toString('latin1');
  }
  return 'none';
}

/** The server's first whole record in answer to `bytes`; undefined when it closes before one. */
async function firstRecord(cleanup: Cleanup, port: number, bytes: Buffer, end = false): Promise<Buffer | undefined> {
  const socket = net.connect({ host: '127.0.0.1', port });
  cleanup.add(() => socket.destroy());
  socket.on('error', () => undefined);
  const answer = new Promise<Buffer | undefined>((resolve) => {
    let held = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      held = Buffer.concat([held, chunk]);
      if (held.length < 5 || held.length < 5 + held.readUInt16BE(3)) return;
      resolve(held.subarray(0, 5 + held.readUInt16BE(3)));
      socket.destroy();
    });
    socket.on('close', () => resolve(undefined));
  });
  if (end) socket.end(bytes);
  else socket.write(bytes);
  return within(answer, 'the server\'s first answer');
}

/** What a TLS 1.2 server's first flight says in the clear: the protocol it chose, and its certificate. */
export interface ServerFlight {
  /** The ALPN protocol of the ServerHello, or null when it has none; 'alert:N' when the server sent an alert. */
  alpn: string | null;
  /** The first certificate of the Certificate message (DER). */
  leaf?: Buffer;
}

/** The handshake messages of `records` (type 22 records, joined); undefined until the Certificate is whole. */
function flightOf(held: Buffer): ServerFlight | undefined {
  const messages: Buffer[] = [];
  let at = 0;
  while (held.length - at >= 5 && held.length - at >= 5 + held.readUInt16BE(at + 3)) {
    const type = held[at];
    const body = held.subarray(at + 5, at + 5 + held.readUInt16BE(at + 3));
    if (type === 21) return { alpn: `alert:${body[1] ?? '?'}` };
    if (type === 22) messages.push(body);
    at += 5 + body.length;
  }
  const stream = Buffer.concat(messages);
  let alpn: string | null = null;
  let offset = 0;
  while (stream.length - offset >= 4 && stream.length - offset >= 4 + stream.readUIntBE(offset + 1, 3)) {
    const type = stream[offset];
    const body = stream.subarray(offset + 4, offset + 4 + stream.readUIntBE(offset + 1, 3));
    offset += 4 + body.length;
    if (type === 2) {
      // version, random, session id, cipher, compression, then the extensions.
      let p = 2 + 32;
      p += 1 + (body[p] ?? 0) + 2 + 1;
      const end = p + 2 + (body.length > p + 1 ? body.readUInt16BE(p) : 0);
      for (p += 2; p + 4 <= end; p += 4 + body.readUInt16BE(p + 2)) {
        if (body.readUInt16BE(p) === EXTENSION_ALPN) alpn = body.subarray(p + 7, p + 7 + (body[p + 6] ?? 0)).toString('latin1');
      }
    }
    if (type === 11) return { alpn, leaf: body.subarray(6, 6 + body.readUIntBE(3, 3)) };
  }
  return undefined;
}

/** The server's TLS 1.2 first flight in answer to `bytes` (a TLS 1.2 ClientHello) sent raw. */
export async function serverFlight(cleanup: Cleanup, port: number, bytes: Buffer): Promise<ServerFlight> {
  const socket = net.connect({ host: '127.0.0.1', port });
  cleanup.add(() => socket.destroy());
  socket.on('error', () => undefined);
  const answer = new Promise<ServerFlight>((resolve) => {
    let held = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      held = Buffer.concat([held, chunk]);
      const flight = flightOf(held);
      if (flight === undefined) return;
      resolve(flight);
      socket.destroy();
    });
    socket.on('close', () => resolve({ alpn: 'closed' }));
  });
  socket.write(bytes);
  return within(answer, 'the server\'s first flight');
}
