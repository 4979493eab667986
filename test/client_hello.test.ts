import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { expect } from 'chai';
import fc from 'fast-check';
import { MAX_CLIENT_HELLO_BYTES, parseClientHello } from '../src/tls/client_hello.js';
import type { ClientHelloParse } from '../src/tls/client_hello.js';
import { ClientHelloAccumulator } from '../src/tls/client_hello_accumulator.js';
import type { AccumulatedHello } from '../src/tls/client_hello_accumulator.js';
import { readClientHello } from '../src/tls/client_hello_reader.js';
import type { ClientHelloReading } from '../src/tls/client_hello_reader.js';
import { createTestPki } from './support/pki.js';
import { writeInPieces } from './support/sockets.js';
import { Cleanup, waitUntil } from './support/waiting.js';

// ---------------------------------------------------------------------------------------
// Capturing real ClientHellos

type Starter = (port: number, fail: (error: Error) => void) => () => void;

/**
 * Accepts one plain TCP connection and returns the first TLS record the client sends, once
 * it is all there. Deliberately independent of the parser (it reads only the 5-byte record
 * header); real clients send the whole hello in one record, which the tests then assert.
 */
async function captureHello(start: Starter): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  let stop = (): void => {};
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      server.once('connection', (socket) => {
        let bytes = Buffer.alloc(0);
        socket.on('error', () => {});
        socket.on('data', (chunk: Buffer) => {
          bytes = Buffer.concat([bytes, chunk]);
          if (bytes.length >= 5 && bytes.length >= 5 + bytes.readUInt16BE(3)) {
            socket.destroy();
            resolve(bytes);
          }
        });
        socket.on('close', () => reject(new Error(`client closed after ${bytes.length} bytes`)));
      });
      stop = start(address.port, reject);
    });
  } finally {
    stop();
    server.close();
  }
}

function nodeClient(options: tls.ConnectionOptions): Starter {
  return (port) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    socket.on('error', () => {}); // the capture server hangs up mid-handshake
    return () => socket.destroy();
  };
}

function opensslClient(args: readonly string[]): Starter {
  return (port, fail) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    child.on('error', fail);
    return () => child.kill();
  };
}

interface RealHellos {
  nodeHello: Buffer;
  nodeNoSni: Buffer;
  nodeNoAlpn: Buffer;
  opensslHello: Buffer;
}

let capturing: Promise<RealHellos> | undefined;

/** The real hellos the suites share, captured once per run. */
function realHellos(): Promise<RealHellos> {
  capturing ??= (async () => ({
    nodeHello: await captureHello(nodeClient({ servername: 'example.test', ALPNProtocols: ['h2', 'http/1.1'] })),
    nodeNoSni: await captureHello(nodeClient({ ALPNProtocols: ['h2', 'http/1.1'] })),
    nodeNoAlpn: await captureHello(nodeClient({ servername: 'example.test' })),
    opensslHello: await captureHello(opensslClient(['-servername', 'x.test', '-alpn', 'a,b'])),
  }))();
  return capturing;
}

// ---------------------------------------------------------------------------------------
// Building hellos by hand

function u8(value: number): Buffer {
  return Buffer.from([value]);
}

function u16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  return bytes;
}

function u24(value: number): Buffer {
  const bytes = Buffer.alloc(3);
  bytes.writeUIntBE(value, 0, 3);
  return bytes;
}

function vec8(...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([u8(body.length), body]);
}

function vec16(...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([u16(body.length), body]);
}

function extension(type: number, body: Uint8Array): Buffer {
  return Buffer.concat([u16(type), vec16(body)]);
}

function sniExtension(name: string | Uint8Array): Buffer {
  const bytes = typeof name === 'string' ? Buffer.from(name, 'latin1') : name;
  return extension(0, vec16(u8(0), vec16(bytes)));
}

function alpnExtension(...protocols: (string | Uint8Array)[]): Buffer {
  const names = protocols.map((p) => vec8(typeof p === 'string' ? Buffer.from(p, 'latin1') : p));
  return extension(16, vec16(...names));
}

interface HelloParts {
  sessionId?: Uint8Array;
  cipherSuites?: Uint8Array;
  compression?: Uint8Array;
  /** undefined: no extensions block at all. */
  extensions?: Uint8Array[];
}

/** A ClientHello handshake message (header included), TLS 1.2 layout. */
function helloMessage(parts: HelloParts = {}): Buffer {
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 0xab),
    vec8(parts.sessionId ?? Buffer.alloc(32, 0x11)),
    vec16(parts.cipherSuites ?? Buffer.from([0x13, 0x01, 0xc0, 0x2f])),
    vec8(parts.compression ?? Buffer.from([0])),
    ...(parts.extensions === undefined ? [] : [vec16(...parts.extensions)]),
  ]);
  return Buffer.concat([u8(1), u24(body.length), body]);
}

function record(body: Uint8Array, contentType = 22): Buffer {
  return Buffer.concat([Buffer.from([contentType, 3, 1]), u16(body.length), body]);
}

/** Frames a handshake message into records, cutting it at the given offsets. */
function frame(message: Uint8Array, cuts: readonly number[] = []): Buffer {
  const bounds = [0, ...cuts, message.length];
  const records: Buffer[] = [];
  for (let i = 1; i < bounds.length; i++) records.push(record(message.subarray(bounds[i - 1], bounds[i])));
  return Buffer.concat(records);
}

/** The handshake message of a single-record hello. */
function messageOf(hello: Uint8Array): Uint8Array {
  return hello.subarray(5);
}

// ---------------------------------------------------------------------------------------
// Assertions

const KINDS = ['incomplete', 'complete', 'invalid'];

function expectComplete(result: ClientHelloParse): Extract<ClientHelloParse, { kind: 'complete' }> {
  if (result.kind !== 'complete') throw new Error(`expected complete, got ${JSON.stringify(result)}`);
  return result;
}

function expectInvalid(data: Uint8Array, pattern?: RegExp): string {
  const result = parseClientHello(data);
  if (result.kind !== 'invalid') throw new Error(`expected invalid, got ${JSON.stringify(result)}`);
  if (pattern !== undefined) expect(result.reason).to.match(pattern);
  return result.reason;
}

/** What every answer must satisfy, whatever the input. */
function checkInvariants(data: Uint8Array, result: ClientHelloParse): void {
  expect(KINDS).to.include(result.kind);
  if (result.kind === 'incomplete') expect(data.length).to.be.below(MAX_CLIENT_HELLO_BYTES);
  if (result.kind === 'invalid') expect(result.reason).to.be.a('string').and.not.equal('');
  if (result.kind === 'complete') {
    expect(result.bytesUsed).to.be.at.most(data.length);
    expect(result.bytesUsed).to.be.at.most(MAX_CLIENT_HELLO_BYTES);
    if (result.servername !== undefined) expect(result.servername).to.match(/^[\x21-\x7e]{1,255}$/);
    for (const protocol of result.alpnProtocols) expect(protocol.length).to.be.within(1, 255);
  }
}

function expectEveryPrefixIncomplete(hello: Uint8Array): void {
  for (let length = 0; length < hello.length; length++) {
    const result = parseClientHello(hello.subarray(0, length));
    if (result.kind !== 'incomplete') {
      throw new Error(`prefix of ${length}/${hello.length} bytes gave ${JSON.stringify(result)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------

describe('parseClientHello: real ClientHellos', function () {
  let nodeHello: Buffer;
  let nodeNoSni: Buffer;
  let nodeNoAlpn: Buffer;
  let opensslHello: Buffer;

  before(async function () {
    ({ nodeHello, nodeNoSni, nodeNoAlpn, opensslHello } = await realHellos());
  });

  it("gives Node's SNI name and ALPN list in the client's order", () => {
    expect(parseClientHello(nodeHello)).to.deep.equal({
      kind: 'complete',
      servername: 'example.test',
      alpnProtocols: ['h2', 'http/1.1'],
      bytesUsed: nodeHello.length,
    });
  });

  it('gives no servername when the client sends none (Node sends none for an IP host)', () => {
    const result = expectComplete(parseClientHello(nodeNoSni));
    expect(result.servername).to.equal(undefined);
    expect(result.alpnProtocols).to.deep.equal(['h2', 'http/1.1']);
  });

  it('gives [] when the client offers no ALPN', () => {
    const result = expectComplete(parseClientHello(nodeNoAlpn));
    expect(result.servername).to.equal('example.test');
    expect(result.alpnProtocols).to.deep.equal([]);
  });

  it("parses the openssl s_client hello (a second implementation's)", () => {
    expect(parseClientHello(opensslHello)).to.deep.equal({
      kind: 'complete',
      servername: 'x.test',
      alpnProtocols: ['a', 'b'],
      bytesUsed: opensslHello.length,
    });
  });

  it('is incomplete for every strict prefix and complete for the whole, byte by byte', () => {
    for (const hello of [nodeHello, nodeNoSni, nodeNoAlpn, opensslHello]) {
      expectEveryPrefixIncomplete(hello);
      expect(parseClientHello(hello).kind).to.equal('complete');
    }
  });

  it('ignores what follows the hello (e.g. early data) and reports where the hello ended', () => {
    const withData = Buffer.concat([nodeHello, record(Buffer.from('early'), 23), Buffer.from('GET /')]);
    expect(expectComplete(parseClientHello(withData)).bytesUsed).to.equal(nodeHello.length);
  });

  it('reassembles a hello re-framed across two and three records', () => {
    const message = messageOf(nodeHello);
    const expected = { servername: 'example.test', alpnProtocols: ['h2', 'http/1.1'] };
    const splits = [[1], [2], [3], [4], [100], [message.length - 1], [2, 3], [4, 200], [50, message.length - 7]];
    for (const cuts of splits) {
      const framed = frame(message, cuts);
      expect(parseClientHello(framed), `cuts ${cuts.join(',')}`).to.deep.equal({
        kind: 'complete',
        ...expected,
        bytesUsed: framed.length,
      });
      expectEveryPrefixIncomplete(framed);
    }
  });

  it('reassembles any re-framing into up to four records', () => {
    const message = messageOf(opensslHello);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: message.length - 1 }), { maxLength: 3 }), (cuts) => {
        const framed = frame(message, [...cuts].sort((a, b) => a - b));
        const result = expectComplete(parseClientHello(framed));
        expect(result.servername).to.equal('x.test');
        expect(result.alpnProtocols).to.deep.equal(['a', 'b']);
        expect(result.bytesUsed).to.equal(framed.length);
      }),
      { numRuns: 500 },
    );
  });

  it("decodes protocol names byte for byte, as Node's alpnProtocol reports them", async () => {
    // Not UTF-8 and with bytes in 0x80-0x9f, where latin1 and windows-1252 differ.
    const protocol = Buffer.from([0x68, 0xe9, 0x80, 0x9f, 0xff]);
    const wire = vec8(protocol); // the typings take non-string names only in wire format
    const hello = await captureHello(nodeClient({ ALPNProtocols: wire }));
    const parsed = expectComplete(parseClientHello(hello)).alpnProtocols;

    const pki = await createTestPki();
    const server = tls.createServer({ ...pki.server, ALPNProtocols: wire });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    try {
      const negotiated = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>;
      const client = tls.connect({ host: '127.0.0.1', port: address.port, rejectUnauthorized: false, ALPNProtocols: wire });
      client.on('error', () => {});
      const [serverSocket] = await negotiated;
      client.destroy();
      expect(serverSocket.alpnProtocol).to.be.a('string');
      expect(parsed).to.deep.equal([serverSocket.alpnProtocol]);
    } finally {
      server.close();
    }
  });

  describe('fuzzing', function () {
    it('never throws on arbitrary bytes', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 1024 }), (data) => {
          checkInvariants(data, parseClientHello(data));
        }),
        { numRuns: 5_000 },
      );
      // Random bytes rarely get past the first byte, so also start them like a hello.
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 1024 }), fc.integer({ min: 0, max: 6 }), (tail, header) => {
          const data = Buffer.concat([Buffer.from([22, 3, 1]).subarray(0, Math.min(header, 3)), tail]);
          if (header > 3) data[5] = 1;
          checkInvariants(data, parseClientHello(data));
        }),
        { numRuns: 5_000 },
      );
    });

    it('never throws on mutations of real hellos, and settles no answer that more bytes would change', () => {
      const bases = [nodeHello, nodeNoAlpn, opensslHello];
      const fields = bases.map(lengthFields);
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: bases.length - 1 }),
          fc.array(helloMutation, { minLength: 1, maxLength: 4 }),
          fc.nat(),
          (which, mutations, cut) => {
            const data = mutate(at(bases, which), at(fields, which), mutations);
            const result = parseClientHello(data);
            checkInvariants(data, result);
            // An answer other than 'incomplete' is final: more bytes must not change it.
            const prefix = data.subarray(0, cut % (data.length + 1));
            const early = parseClientHello(prefix);
            checkInvariants(prefix, early);
            if (early.kind === 'invalid') expect(result.kind).to.equal('invalid');
            if (early.kind === 'complete') expect(result).to.deep.equal(early);
          },
        ),
        { numRuns: 20_000 },
      );
    });

    it('never answers incomplete for inputs of MAX_CLIENT_HELLO_BYTES or more', () => {
      // Hellos fragmented into tiny records, declaring any handshake length.
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 64 }),
          fc.integer({ min: 0, max: 0xffffff }),
          fc.integer({ min: 0, max: 64 }),
          (recordSize, declared, extra) => {
            const stream = Buffer.concat([u8(1), u24(declared), Buffer.alloc(MAX_CLIENT_HELLO_BYTES, 0x41)]);
            const records: Buffer[] = [];
            let length = 0;
            for (let i = 0; length < MAX_CLIENT_HELLO_BYTES + extra; i += recordSize) {
              const piece = record(stream.subarray(i, i + recordSize));
              records.push(piece);
              length += piece.length;
            }
            const data = Buffer.concat(records).subarray(0, MAX_CLIENT_HELLO_BYTES + extra);
            checkInvariants(data, parseClientHello(data));
          },
        ),
        { numRuns: 300 },
      );
      // Hello-shaped starts with random lengths, followed by arbitrary bytes.
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 0xffff }),
          fc.integer({ min: 0, max: 0xffffff }),
          fc.integer({ min: 0, max: 255 }),
          fc.integer({ min: 0, max: 64 }),
          (recordLength, declared, fill, extra) => {
            const data = Buffer.alloc(MAX_CLIENT_HELLO_BYTES + extra, fill);
            Buffer.concat([Buffer.from([22, 3, 1]), u16(recordLength), u8(1), u24(declared)]).copy(data);
            checkInvariants(data, parseClientHello(data));
          },
        ),
        { numRuns: 300 },
      );
      // Real hellos with a huge padding extension claimed.
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 0xff00 }), fc.integer({ min: 0, max: 64 }), (padding, extra) => {
          const message = helloMessage({ extensions: [sniExtension('a.test'), extension(21, Buffer.alloc(padding))] });
          const framed = frame(message, Array.from({ length: Math.floor(message.length / 16384) }, (_, i) => (i + 1) * 16384));
          const data = Buffer.concat([framed, Buffer.alloc(MAX_CLIENT_HELLO_BYTES + extra)]).subarray(0, MAX_CLIENT_HELLO_BYTES + extra);
          checkInvariants(data, parseClientHello(data));
        }),
        { numRuns: 300 },
      );
    });
  });
});

describe('parseClientHello: hand-built hellos', () => {
  const basic = helloMessage({ extensions: [sniExtension('a.test'), alpnExtension('h2', 'http/1.1')] });

  it('parses a minimal well-formed hello', () => {
    const data = frame(basic);
    expect(parseClientHello(data)).to.deep.equal({
      kind: 'complete',
      servername: 'a.test',
      alpnProtocols: ['h2', 'http/1.1'],
      bytesUsed: data.length,
    });
  });

  it('parses a hello with no extensions block (pre-TLS 1.2 style)', () => {
    expect(expectComplete(parseClientHello(frame(helloMessage()))).alpnProtocols).to.deep.equal([]);
  });

  it('accepts a 255-byte server name and skips unknown name types', () => {
    const name = 'a'.repeat(251) + '.xyz';
    expect(expectComplete(parseClientHello(frame(helloMessage({ extensions: [sniExtension(name)] })))).servername).to.equal(name);
    const otherType = extension(0, vec16(u8(7), vec16(Buffer.from('ignored')), u8(0), vec16(Buffer.from('b.test'))));
    expect(expectComplete(parseClientHello(frame(helloMessage({ extensions: [otherType] })))).servername).to.equal('b.test');
  });

  it('accepts the largest hello that fits under the cap and rejects one byte more', () => {
    // One full record plus as much as the cap leaves for a second one.
    const fitting = MAX_CLIENT_HELLO_BYTES - 2 * 5;
    const base = helloMessage({ extensions: [extension(21, Buffer.alloc(0))] });
    const padded = helloMessage({ extensions: [extension(21, Buffer.alloc(fitting - base.length))] });
    expect(padded.length).to.equal(fitting);
    const data = frame(padded, [16384]);
    expect(data.length).to.equal(MAX_CLIENT_HELLO_BYTES);
    expect(expectComplete(parseClientHello(data)).bytesUsed).to.equal(MAX_CLIENT_HELLO_BYTES);

    const tooBig = helloMessage({ extensions: [extension(21, Buffer.alloc(fitting - base.length + 1))] });
    // Rejected from the headers alone, before the body arrives.
    expectInvalid(frame(tooBig, [16384]).subarray(0, 9), /cap/);
  });

  describe('rejects hostile input, as soon as the bytes that show it arrive', () => {
    it('an HTTP request, from its first byte', () => {
      expectInvalid(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /handshake record/);
      expectInvalid(Buffer.from('G'));
    });

    it('an SSLv2-style hello', () => {
      expectInvalid(Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02]), /SSLv2/);
    });

    it('a record version other than 3.x', () => {
      expectInvalid(Buffer.from([22, 2]), /version/);
    });

    it('an oversize declared record length', () => {
      expectInvalid(Buffer.from([22, 3, 1, 0xff, 0xff]), /record length 65535/);
      expectInvalid(Buffer.from([22, 3, 1, 0x40, 0x01]), /record length/);
    });

    it('an empty record', () => {
      expectInvalid(Buffer.from([22, 3, 1, 0, 0]), /empty/);
    });

    it('a handshake length larger than the cap', () => {
      expectInvalid(Buffer.from([22, 3, 1, 0x40, 0x00, 1, 0x00, 0x50, 0x00]), /bytes, over the 16404-byte cap/);
      expectInvalid(Buffer.from([22, 3, 1, 0x40, 0x00, 1, 0xff, 0xff, 0xff]), /cap/);
      // The header may arrive in fragments; the length counts once all three bytes are in.
      expectInvalid(frame(Buffer.from([1, 0xff, 0xff, 0xff]), [1, 2, 3]), /cap/);
    });

    it('a flood of tiny records that would need more than the cap', () => {
      const message = helloMessage({ extensions: [extension(21, Buffer.alloc(4004 - 85))] });
      expect(message.length).to.equal(4004);
      const cuts = Array.from({ length: message.length - 1 }, (_, i) => i + 1);
      const data = frame(message, cuts).subarray(0, MAX_CLIENT_HELLO_BYTES);
      // Legitimate fragmentation, so it waits... until the records seen plus the rest in one
      // more record would cross the cap (at 2480 one-byte records).
      expect(parseClientHello(data.subarray(0, 2479 * 6)).kind).to.equal('incomplete');
      expectInvalid(data.subarray(0, 2480 * 6), /cap/);
      expectInvalid(data, /cap/);
    });

    it('a handshake message other than ClientHello', () => {
      expectInvalid(Buffer.from([22, 3, 1, 0, 4, 2]), /type 2/);
    });

    it('another content type interrupting a fragmented hello', () => {
      const first = record(basic.subarray(0, 10));
      expectInvalid(Buffer.concat([first, record(Buffer.from([2, 40]), 21)]), /content type 21/);
    });

    it('handshake data after the hello in its record', () => {
      expectInvalid(record(Buffer.concat([basic, Buffer.from([20, 0, 0, 0])])), /after the ClientHello/);
    });

    it('extension lengths pointing past the end', () => {
      const ext = sniExtension('a.test');
      ext.writeUInt16BE(ext.readUInt16BE(2) + 1, 2);
      expectInvalid(frame(helloMessage({ extensions: [ext] })), /past the end/);
      const block = helloMessage({ extensions: [alpnExtension('h2')] });
      // The extensions block length: just after compression methods.
      const blockAt = 4 + 2 + 32 + 33 + 2 + 4 + 2;
      block.writeUInt16BE(block.readUInt16BE(blockAt) + 9, blockAt);
      expectInvalid(frame(block), /past the end/);
      // Inner lengths too: the ALPN list claiming more than its extension holds.
      const alpn = alpnExtension('h2');
      alpn.writeUInt16BE(200, 4);
      const data = frame(helloMessage({ extensions: [alpn] }));
      expectInvalid(data, /past the end/);
    });

    it('ALPN with a zero-length protocol or an empty list', () => {
      expectInvalid(frame(helloMessage({ extensions: [alpnExtension('h2', '')] })), /ALPN protocol name length 0/);
      expectInvalid(frame(helloMessage({ extensions: [extension(16, vec16())] })), /ALPN protocol list length 0/);
      expectInvalid(frame(helloMessage({ extensions: [extension(16, Buffer.alloc(0))] })), /ALPN/);
    });

    it('an SNI name of 300 bytes', () => {
      const hello = frame(helloMessage({ extensions: [sniExtension('a'.repeat(300))] }));
      expectInvalid(hello, /300 bytes/);
      // Known from the length field, without waiting for the name itself.
      const nameAt = hello.indexOf('a'.repeat(10));
      expectInvalid(hello.subarray(0, nameAt), /300 bytes/);
    });

    it('an SNI name with bytes outside printable ASCII', () => {
      for (const bad of [Buffer.from('a b'), Buffer.from([0x61, 0x00, 0x62]), Buffer.from('é.test', 'utf8'), Buffer.from('\n')]) {
        expectInvalid(frame(helloMessage({ extensions: [sniExtension(bad)] })), /server name has byte/);
      }
    });

    it('SNI that is empty or names two hosts', () => {
      expectInvalid(frame(helloMessage({ extensions: [sniExtension('')] })), /server name length 0/);
      expectInvalid(frame(helloMessage({ extensions: [extension(0, vec16())] })), /server_name list length 0/);
      const two = extension(0, vec16(u8(0), vec16(Buffer.from('a.test')), u8(0), vec16(Buffer.from('b.test'))));
      expectInvalid(frame(helloMessage({ extensions: [two] })), /more than one host_name/);
    });

    it('duplicate extensions', () => {
      expectInvalid(frame(helloMessage({ extensions: [alpnExtension('h2'), alpnExtension('h2')] })), /duplicate extension 16/);
      expectInvalid(frame(helloMessage({ extensions: [sniExtension('a.test'), sniExtension('a.test')] })), /duplicate extension 0/);
      const unknown = extension(0xfafa, Buffer.alloc(0));
      expectInvalid(frame(helloMessage({ extensions: [unknown, alpnExtension('h2'), unknown] })), /duplicate extension 64250/);
    });

    it('malformed fixed fields', () => {
      expectInvalid(frame(helloMessage({ sessionId: Buffer.alloc(33) })), /legacy_session_id length 33/);
      expectInvalid(frame(helloMessage({ cipherSuites: Buffer.from([0x13, 0x01, 0x13]) })), /odd/);
      expectInvalid(frame(helloMessage({ cipherSuites: Buffer.alloc(0) })), /cipher_suites length 0/);
      expectInvalid(frame(helloMessage({ compression: Buffer.alloc(0) })), /compression_methods length 0/);
      const trailing = Buffer.concat([basic, Buffer.from([0])]);
      trailing.writeUIntBE(trailing.length - 4, 1, 3);
      expectInvalid(frame(trailing), /unexpected bytes/);
    });
  });
});

// ---------------------------------------------------------------------------------------
// The accumulator and the reader: how the bytes are cut into reads must not matter

/** `data` cut at the given offsets (any order, duplicates and out-of-range ones ignored). */
function cutInto(data: Buffer, cuts: readonly number[]): Buffer[] {
  const bounds = [...new Set(cuts.map((cut) => cut % (data.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const bound of [...bounds, data.length]) {
    if (bound > start) chunks.push(data.subarray(start, bound));
    start = Math.max(start, bound);
  }
  return chunks;
}

interface Fed {
  result: AccumulatedHello;
  peak: number;
  largestChunk: number;
}

/** Pushes the chunks in order (stopping once settled), checking the cap after every one. */
function feed(chunks: readonly Buffer[]): Fed {
  const accumulator = new ClientHelloAccumulator();
  let result: AccumulatedHello = { kind: 'incomplete' };
  let largestChunk = 0;
  for (const chunk of chunks) {
    largestChunk = Math.max(largestChunk, chunk.length);
    result = accumulator.push(chunk);
    if (result.kind !== 'incomplete') {
      if (accumulator.bufferedBytes !== 0) throw new Error(`${accumulator.bufferedBytes} bytes still held once settled`);
      break;
    }
    // Plain checks: this runs once per byte in the byte-by-byte cuts.
    if (accumulator.bufferedBytes > MAX_CLIENT_HELLO_BYTES) throw new Error(`${accumulator.bufferedBytes} bytes held while waiting`);
  }
  expect(accumulator.peakBufferedBytes).to.be.at.most(MAX_CLIENT_HELLO_BYTES + largestChunk);
  return { result, peak: accumulator.peakBufferedBytes, largestChunk };
}

const readCuts = fc.oneof(
  fc.array(fc.nat(), { maxLength: 12 }),
  // Now and then byte by byte, the cheapest cut for a client and the costliest for a reader.
  fc.constant('every byte' as const),
);

function chunksOf(data: Buffer, cuts: readonly number[] | 'every byte'): Buffer[] {
  return cuts === 'every byte' ? Array.from(data, (_byte, index) => data.subarray(index, index + 1)) : cutInto(data, cuts);
}

describe('ClientHelloAccumulator: however the bytes are cut into reads, the answer is the one-chunk answer', function () {
  let hellos: RealHellos;
  before(async function () {
    hellos = await realHellos();
  });

  it('completes real hellos, re-framed into up to four records and cut anywhere, with what one chunk gives', () => {
    const bases = [hellos.nodeHello, hellos.nodeNoSni, hellos.nodeNoAlpn, hellos.opensslHello];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: bases.length - 1 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 250 }), { maxLength: 3 }),
        readCuts,
        fc.boolean(),
        (which, recordCuts, cuts, earlyData) => {
          const hello = frame(messageOf(at(bases, which)), [...recordCuts].sort((a, b) => a - b));
          const data = earlyData ? Buffer.concat([hello, record(Buffer.from('early'), 23)]) : hello;
          const expected = expectComplete(parseClientHello(data));
          const { result } = feed(chunksOf(data, cuts));
          if (result.kind !== 'complete') throw new Error(`expected complete, got ${JSON.stringify(result)}`);
          expect(result.servername).to.equal(expected.servername);
          expect(result.alpnProtocols).to.deep.equal(expected.alpnProtocols);
          // What is put back for OpenSSL: every byte held, the hello first and untouched.
          expect(result.bytes.length).to.be.at.least(expected.bytesUsed);
          expect(result.bytes.equals(data.subarray(0, result.bytes.length))).to.equal(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('completes the largest hello under the cap, and rejects one byte more as too large, cut anywhere', () => {
    const fitting = MAX_CLIENT_HELLO_BYTES - 2 * 5;
    const base = helloMessage({ extensions: [extension(21, Buffer.alloc(0))] });
    const largest = frame(helloMessage({ extensions: [sniExtension('a.test'), extension(21, Buffer.alloc(fitting - base.length - 15))] }), [16384]);
    const tooLarge = frame(helloMessage({ extensions: [extension(21, Buffer.alloc(fitting - base.length + 1))] }), [16384]);
    expect(largest.length).to.equal(MAX_CLIENT_HELLO_BYTES);
    fc.assert(
      fc.property(readCuts.filter((cuts) => cuts !== 'every byte'), (cuts) => {
        const { result } = feed(chunksOf(largest, cuts));
        expect(result.kind === 'complete' ? result.servername : result).to.equal('a.test');
        const rejected = feed(chunksOf(tooLarge, cuts)).result;
        expect(rejected.kind === 'invalid' ? rejected.reason : rejected).to.match(/too large/);
      }),
      { numRuns: 200 },
    );
  });

  it('never settles an answer other than the whole input parsed in one piece, for mutated hellos and arbitrary bytes', () => {
    const bases = [hellos.nodeHello, hellos.nodeNoAlpn, hellos.opensslHello];
    const fields = bases.map(lengthFields);
    const input = fc.oneof(
      fc
        .tuple(fc.integer({ min: 0, max: bases.length - 1 }), fc.array(helloMutation, { minLength: 1, maxLength: 4 }))
        .map(([which, mutations]) => mutate(at(bases, which), at(fields, which), mutations)),
      fc.uint8Array({ maxLength: 600 }).map((tail) => Buffer.concat([Buffer.from([22, 3, 1]), tail])),
    );
    fc.assert(
      fc.property(input, readCuts, (data, cuts) => {
        const whole = parseClientHello(data);
        const { result } = feed(chunksOf(data, cuts));
        // The reader waits for the framing to decide, so it may still be waiting where the
        // parser already saw a malformed field; it never answers otherwise than the parser.
        if (result.kind === 'incomplete') {
          expect(whole.kind).to.not.equal('complete');
          return;
        }
        expect(result.kind).to.equal(whole.kind);
        // Settled either way, every byte read goes back, in order, for OpenSSL.
        expect(result.bytes.equals(data.subarray(0, result.bytes.length))).to.equal(true);
        if (result.kind === 'complete' && whole.kind === 'complete') {
          expect([result.servername, result.alpnProtocols]).to.deep.equal([whole.servername, whole.alpnProtocols]);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('rejects any stream of MAX_CLIENT_HELLO_BYTES or more, holding at most the cap plus the read that crossed it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16384 }),
        fc.integer({ min: 0, max: 0xffffff }),
        fc.integer({ min: 0, max: 20_000 }),
        readCuts.filter((cuts) => cuts !== 'every byte'),
        (recordSize, declared, extra, cuts) => {
          // Handshake records of one size, however long the hello they claim to carry.
          const total = MAX_CLIENT_HELLO_BYTES + extra;
          const stream = Buffer.concat([u8(1), u24(declared), Buffer.alloc(total, 0x41)]);
          const records: Buffer[] = [];
          for (let i = 0, length = 0; length < total; i += recordSize) {
            const piece = record(stream.subarray(i, i + recordSize));
            records.push(piece);
            length += piece.length;
          }
          const data = Buffer.concat(records).subarray(0, total);
          const { result } = feed(chunksOf(data, cuts));
          if (result.kind !== 'invalid') throw new Error(`expected invalid, got ${JSON.stringify(result)}`);
          // What it held goes back to be read by OpenSSL: the stream's first bytes.
          expect(result.bytes.equals(data.subarray(0, result.bytes.length))).to.equal(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('readClientHello over a real socket: at most the cap plus one read is held, then handed back', function () {
  const cleanup = new Cleanup();
  afterEach(async function () {
    await cleanup.run();
  });

  /**
   * Full-size handshake records opening a ClientHello that claims 64 KiB, less the last byte:
   * a flood never ends, so its bytes never end on a record boundary either.
   */
  function fullSizeRecords(count: number): Buffer {
    const body = Buffer.alloc(1 << 14, 0x41);
    Buffer.concat([u8(1), u24(64 * 1024)]).copy(body);
    const records = Buffer.concat(Array.from({ length: count }, () => record(body)));
    return records.subarray(0, records.length - 1);
  }

  /** A real hello's message cut into one-byte records: legitimate framing, past the cap. */
  function oneByteRecords(): Buffer {
    const message = helloMessage({ extensions: [sniExtension('a.test'), extension(21, Buffer.alloc(4000))] });
    return frame(message, Array.from({ length: message.length - 1 }, (_, i) => i + 1));
  }

  const floods: Array<[string, () => Buffer, number]> = [
    // 16390-byte writes over 16389-byte records: no write ends on a record boundary.
    ['full-size records that never end on a write boundary', () => fullSizeRecords(64), 16_390],
    ['a hello cut into one-byte records', oneByteRecords, 1_000],
  ];
  for (const [what, streamOf, writeSize] of floods) {
    it(`gives up on ${what} holding at most the cap plus one read, and puts back exactly the bytes it read`, async function () {
      const stream = streamOf();
      const server = net.createServer();
      cleanup.add(() => new Promise((resolve) => server.close(resolve)));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const address = server.address() as net.AddressInfo;

      let largestChunk = 0;
      let settled: string | undefined;
      let putBack: Buffer | null = null;
      let reading: ClientHelloReading | undefined;
      server.once('connection', (socket: net.Socket) => {
        cleanup.add(() => socket.destroy());
        socket.on('error', () => undefined);
        // Registered first, so it sees each chunk before the reader does.
        socket.on('data', (chunk: Buffer) => {
          if (settled === undefined) largestChunk = Math.max(largestChunk, chunk.length);
        });
        reading = readClientHello(
          socket,
          (hello) => {
            settled = hello === undefined ? 'unparsed' : `accepted a flood as a hello: ${JSON.stringify(hello)}`;
            // Paused, holding what the reader put back and nothing else yet: OpenSSL's to read.
            putBack = socket.read() as Buffer | null;
          },
          (error) => {
            settled = `failed: ${error.code}`;
          },
        );
      });

      const client = net.connect(address.port, '127.0.0.1');
      cleanup.add(() => client.destroy());
      client.on('error', () => undefined);
      await once(client, 'connect');
      await writeInPieces(client, stream, writeSize, () => settled !== undefined);
      client.end();
      await waitUntil(() => settled !== undefined, 'the reader to give up');
      expect(settled).to.equal('unparsed');
      const bytes: Buffer = putBack ?? Buffer.alloc(0);
      expect(bytes.length).to.be.above(0);
      expect(bytes.equals(stream.subarray(0, bytes.length)), 'the stream\'s first bytes, in order').to.equal(true);
      if (reading === undefined) throw new Error('no connection was read');
      expect(reading.peakBufferedBytes, `largest read ${largestChunk}`).to.be.at.most(MAX_CLIENT_HELLO_BYTES + largestChunk);
      expect(bytes.length).to.equal(reading.peakBufferedBytes);
      expect(reading.bufferedBytes).to.equal(0);
    });
  }
});

const helloMutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('length' as const),
    at: fc.nat(),
    value: fc.oneof(fc.constant(0), fc.constant(1), fc.constant(0xffffff), fc.integer({ min: -3, max: 3 }), fc.nat()),
    relative: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('splice' as const),
    at: fc.nat(),
    remove: fc.integer({ min: 0, max: 4 }),
    insert: fc.uint8Array({ maxLength: 4 }),
  }),
);

type HelloMutation = typeof helloMutation extends fc.Arbitrary<infer M> ? M : never;

/** A copy of `base` with the mutations applied in order (lengths found by lengthFields). */
function mutate(base: Buffer, fields: readonly LengthField[], mutations: readonly HelloMutation[]): Buffer {
  let data = Buffer.from(base);
  for (const m of mutations) {
    if (m.kind === 'flip') {
      const index = m.at % Math.max(1, data.length);
      if (index < data.length) data.writeUInt8(data.readUInt8(index) ^ m.xor, index);
    } else if (m.kind === 'truncate') {
      data = data.subarray(0, m.at % (data.length + 1));
    } else if (m.kind === 'splice') {
      const index = m.at % (data.length + 1);
      data = Buffer.concat([data.subarray(0, index), m.insert, data.subarray(index + m.remove)]);
    } else {
      const field = at(fields, m.at % fields.length);
      if (field.at + field.size > data.length) continue;
      const max = 2 ** (8 * field.size) - 1;
      const old = data.readUIntBE(field.at, field.size);
      const value = m.relative ? old + m.value : m.value;
      data.writeUIntBE(Math.min(max, Math.max(0, value)), field.at, field.size);
    }
  }
  return data;
}

function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no element at ${index}`);
  return item;
}

interface LengthField {
  at: number;
  size: 1 | 2 | 3;
}

/**
 * Where a single-record, well-formed hello keeps its length fields, so the mutation fuzzer
 * can corrupt lengths rather than only random bytes. Trusted input: a captured hello.
 */
function lengthFields(hello: Buffer): LengthField[] {
  const fields: LengthField[] = [{ at: 3, size: 2 }, { at: 6, size: 3 }];
  let p = 5 + 4 + 2 + 32;
  fields.push({ at: p, size: 1 });
  p += 1 + hello.readUInt8(p);
  fields.push({ at: p, size: 2 });
  p += 2 + hello.readUInt16BE(p);
  fields.push({ at: p, size: 1 });
  p += 1 + hello.readUInt8(p);
  if (p >= hello.length) return fields;
  fields.push({ at: p, size: 2 });
  const end = p + 2 + hello.readUInt16BE(p);
  p += 2;
  while (p < end) {
    const type = hello.readUInt16BE(p);
    const length = hello.readUInt16BE(p + 2);
    fields.push({ at: p + 2, size: 2 });
    const body = p + 4;
    if (type === 0) {
      fields.push({ at: body, size: 2 }, { at: body + 3, size: 2 });
    } else if (type === 16) {
      fields.push({ at: body, size: 2 });
      for (let q = body + 2; q < body + length; q += 1 + hello.readUInt8(q)) fields.push({ at: q, size: 1 });
    }
    p = body + length;
  }
  return fields;
}
