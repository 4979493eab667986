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
 * (2 is a ServerHello), or 'closed' when it closes without a whole record.
 */
export async function firstAnswer(cleanup: Cleanup, port: number, bytes: Buffer): Promise<string> {
  const socket = net.connect({ host: '127.0.0.1', port });
  cleanup.add(() => socket.destroy());
  socket.on('error', () => undefined);
  const answer = new Promise<string>((resolve) => {
    let held = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      held = Buffer.concat([held, chunk]);
      if (held.length < 5 || held.length < 5 + held.readUInt16BE(3)) return;
      const type = held[0];
      if (type === 21) resolve(`alert:${held[6] ?? '?'}`);
      else if (type === 22) resolve(`handshake:${held[5] ?? '?'}`);
      else resolve(`record:${type ?? '?'}`);
      socket.destroy();
    });
    socket.on('close', () => resolve('closed'));
  });
  socket.write(bytes);
  return within(answer, 'the server\'s first answer');
}
