// PROXY protocol headers built byte by byte from HAProxy's doc/proxy-protocol.txt, written
// independently of the parser under test, and a TLS client that sends one before its
// ClientHello the way a load balancer would.
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { crc32c } from '../../src/proxy/crc32c.js';
import { TlsClient } from './tls_harness.js';
import type { Cleanup } from './waiting.js';

export const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

export function v1(line: string): Buffer {
  return Buffer.from(`${line}\r\n`, 'latin1');
}

export interface V2Spec {
  command?: 'LOCAL' | 'PROXY';
  /** The family/transport byte: 0x11 TCP4, 0x21 TCP6, 0x31 UNIX stream, 0x00 UNSPEC... */
  familyTransport: number;
  addresses?: Buffer;
  tlvs?: Buffer[];
  /** Append a PP2_TYPE_CRC32C TLV with the right checksum (or this wrong value). */
  crc?: true | number;
}

export function tlv(type: number, value: Buffer | string): Buffer {
  const body = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const head = Buffer.alloc(3);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(body.length, 1);
  return Buffer.concat([head, body]);
}

export function inet4(source: string, destination: string, sourcePort: number, destinationPort: number): Buffer {
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sourcePort, 0);
  ports.writeUInt16BE(destinationPort, 2);
  return Buffer.concat([Buffer.from(source.split('.').map(Number)), Buffer.from(destination.split('.').map(Number)), ports]);
}

/** 16 bytes of an IPv6 address written out in full ('2001:db8:0:0:0:0:0:1'). */
function ipv6Bytes(full: string): Buffer {
  const out = Buffer.alloc(16);
  full.split(':').forEach((group, i) => out.writeUInt16BE(parseInt(group, 16), 2 * i));
  return out;
}

export function inet6(source: string, destination: string, sourcePort: number, destinationPort: number): Buffer {
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sourcePort, 0);
  ports.writeUInt16BE(destinationPort, 2);
  return Buffer.concat([ipv6Bytes(source), ipv6Bytes(destination), ports]);
}

export function unixAddresses(source: string, destination: string): Buffer {
  const block = Buffer.alloc(216);
  block.write(source, 0, 'utf8');
  block.write(destination, 108, 'utf8');
  return block;
}

export function v2(spec: V2Spec): Buffer {
  const tlvs = [...(spec.tlvs ?? [])];
  if (spec.crc !== undefined) tlvs.push(tlv(0x03, Buffer.alloc(4)));
  const body = Buffer.concat([spec.addresses ?? Buffer.alloc(0), ...tlvs]);
  const fixed = Buffer.alloc(4);
  fixed.writeUInt8(spec.command === 'LOCAL' ? 0x20 : 0x21, 0);
  fixed.writeUInt8(spec.familyTransport, 1);
  fixed.writeUInt16BE(body.length, 2);
  const header = Buffer.concat([SIGNATURE, fixed, body]);
  if (spec.crc !== undefined) header.writeUInt32BE(spec.crc === true ? crc32c(header) : spec.crc, header.length - 4);
  return header;
}

/**
 * A tls.connect client over a loopback TCP connection that first sends `header`. With
 * 'together' the header and the ClientHello go out in one write (one segment on loopback);
 * with 'bytewise' the header goes one byte per write before the hello; with 'hello-split' the
 * header and the hello's first 20 bytes go in one write, and the rest of the hello 100 ms later.
 */
export function proxiedTlsConnect(
  cleanup: Cleanup,
  port: number,
  header: Buffer,
  options: tls.ConnectionOptions = {},
  cut: 'together' | 'bytewise' | 'hello-split' = 'together',
): TlsClient {
  const raw = net.connect({ host: '127.0.0.1', port });
  raw.setNoDelay(true);
  cleanup.add(() => raw.destroy());
  let headerSent = false;
  const carrier = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      if (headerSent) {
        raw.write(chunk, callback);
        return;
      }
      headerSent = true;
      if (cut === 'together') {
        raw.write(Buffer.concat([header, chunk]), callback);
        return;
      }
      if (cut === 'hello-split') {
        raw.write(Buffer.concat([header, chunk.subarray(0, 20)]));
        setTimeout(() => raw.write(chunk.subarray(20), callback), 100);
        return;
      }
      for (const byte of header) raw.write(Buffer.from([byte]));
      raw.write(chunk, callback);
    },
    read() {
      raw.resume();
    },
    final(callback) {
      raw.end(callback);
    },
    destroy(error, callback) {
      raw.destroy();
      callback(error);
    },
  });
  raw.on('data', (chunk: Buffer) => {
    if (!carrier.push(chunk)) raw.pause();
  });
  raw.on('end', () => carrier.push(null));
  raw.on('error', (error) => carrier.destroy(error));
  raw.on('close', () => carrier.destroy());
  const socket = tls.connect({ socket: carrier, rejectUnauthorized: false, ...options });
  cleanup.add(() => socket.destroy());
  const client = new TlsClient(socket);
  // The TLS socket over a stream has no port of its own; the TCP connection under it does.
  raw.once('connect', () => {
    client.localPort = raw.localPort;
  });
  return client;
}
