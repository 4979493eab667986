// The classes of ClientHello that tlsfuzzer's scripts found answered differently from
// tls.createServer, hand-built from a real client's hello, and the reference server they are
// compared with. Shared by every path that reads the hello before OpenSSL does (peeked in C++,
// read in JS), which must each give the client what tls.createServer gives the same bytes.
import net from 'node:net';
import tls from 'node:tls';
import type { CertAndKey } from './pki.js';
import type { Cleanup } from './waiting.js';
import { EXTENSION_ALPN, EXTENSION_SERVER_NAME, handshakeOf, inRecords, serverNameData, withExtension } from './hello_builder.js';
import type { HelloParts } from './hello_builder.js';

export const DECODE_ERROR = 'alert:50';
export const SERVER_HELLO = 'handshake:2';

/** A zero-length handshake record: OpenSSL skips it; the hello readers leave what follows to OpenSSL. */
export const EMPTY_HANDSHAKE_RECORD = Buffer.from([22, 3, 1, 0, 0]);

/** An SSLv2-format CLIENT-HELLO (RFC 6101 E.1), as very old clients and scanners send. */
export function sslv2Hello(): Buffer {
  const ciphers = Buffer.from([0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, 0x00, 0x00, 0x0a]);
  const challenge = Buffer.alloc(16, 7);
  const body = Buffer.concat([
    Buffer.from([0x01, 0x03, 0x01, 0x00, ciphers.length, 0x00, 0x00, 0x00, challenge.length]),
    ciphers,
    challenge,
  ]);
  return Buffer.concat([Buffer.from([0x80 | (body.length >> 8), body.length & 0xff]), body]);
}

/** Hellos whose lengths disagree with what they enclose: OpenSSL answers each with decode_error. */
export const malformedHellos: Array<{ name: string; hello: (parts: HelloParts) => Buffer }> = [
  {
    name: 'a server_name list longer than its extension',
    hello: (parts) => {
      const data = Buffer.from(serverNameData(Buffer.from('sni.example')));
      data.writeUInt16BE(data.readUInt16BE(0) + 1, 0);
      return inRecords(handshakeOf(withExtension(parts, EXTENSION_SERVER_NAME, data)));
    },
  },
  {
    name: 'an ALPN list holding an empty protocol name',
    hello: (parts) => inRecords(handshakeOf(withExtension(parts, EXTENSION_ALPN, Buffer.from([0, 4, 2, 0x68, 0x32, 0])))),
  },
  {
    name: 'an extensions block one byte longer than the hello',
    hello: (parts) => {
      const message = handshakeOf(parts);
      const at = 4 + parts.head.length;
      message.writeUInt16BE(message.readUInt16BE(at) + 1, at);
      return inRecords(message);
    },
  },
  {
    name: 'an odd cipher_suites length',
    hello: (parts) => {
      const message = handshakeOf(parts);
      // Handshake header, version, random, then the session id behind its length byte.
      const at = 4 + 2 + 32 + 1 + (message[4 + 2 + 32] ?? 0);
      message.writeUInt16BE(message.readUInt16BE(at) + 1, at);
      return inRecords(message);
    },
  },
];

/** Server names the parsers refuse or are strict about: OpenSSL gives each its own answer. */
export const unusualNames: Array<{ name: string; bytes: Buffer }> = [
  { name: 'an empty host name', bytes: Buffer.alloc(0) },
  { name: 'a host name with control characters', bytes: Buffer.from('a\x01b\x7f.example', 'latin1') },
  { name: 'a UTF-8 host name', bytes: Buffer.from('bücher.example', 'utf8') },
  { name: 'a host name with a NUL', bytes: Buffer.from('a\0b.example', 'latin1') },
  { name: 'a 256-byte host name', bytes: Buffer.alloc(256, 0x61) },
];

/**
 * tls.createServer with `credential`, `alpn` and (when given) an SNICallback serving `sni`, as
 * a listener with the same options would answer; every connection gets 'hi'. Its port.
 */
export async function startReference(cleanup: Cleanup, credential: CertAndKey, alpn: readonly string[], sni?: CertAndKey): Promise<number> {
  const reference = tls.createServer({
    key: credential.key,
    cert: credential.cert,
    ALPNProtocols: [...alpn],
    ...(sni ? { SNICallback: (_name: string, callback: (error: Error | null, context: tls.SecureContext) => void) => callback(null, tls.createSecureContext({ key: sni.key, cert: sni.cert })) } : {}),
  });
  reference.on('secureConnection', (socket) => socket.end('hi'));
  reference.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => reference.listen(0, '127.0.0.1', resolve));
  cleanup.add(() => new Promise<void>((resolve) => reference.close(() => resolve())));
  return (reference.address() as net.AddressInfo).port;
}
