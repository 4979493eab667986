// The PROXY protocol header parser (src/proxy/): byte-level cases from HAProxy's
// doc/proxy-protocol.txt, truncated and hostile headers, any cut into reads, fuzzing, and the
// trustedProxies list.
import { expect } from 'chai';
import fc from 'fast-check';
import { parseV1 } from '../src/proxy/proxy_v1.js';
import { parseV2 } from '../src/proxy/proxy_v2.js';
import { ProxyHeaderAccumulator } from '../src/proxy/proxy_header_accumulator.js';
import type { AccumulatedProxyHeader, ProxyProtocolMode } from '../src/proxy/proxy_header_accumulator.js';
import { V1_MAX_BYTES, V2_MAX_BYTES } from '../src/proxy/proxy_header.js';
import type { ProxyHeader, ProxyHeaderParse } from '../src/proxy/proxy_header.js';
import { crc32c } from '../src/proxy/crc32c.js';
import { TrustedProxies } from '../src/proxy/trusted_proxies.js';
import { SIGNATURE, inet4, inet6, tlv, unixAddresses, v1, v2 } from './support/proxy_headers.js';

const FULL_V6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';

function complete(parse: ProxyHeaderParse): { header: ProxyHeader; length: number } {
  if (parse.kind !== 'complete') throw new Error(`expected a complete header, got ${JSON.stringify(parse)}`);
  return parse;
}

function reason(parse: ProxyHeaderParse | AccumulatedProxyHeader): string {
  if (parse.kind !== 'invalid') throw new Error(`expected an invalid header, got ${parse.kind}`);
  return parse.reason;
}

/**
 * Pushes `pieces` until the answer settles, as the socket reader does; the pieces after that
 * go to the next stage, so they are appended to `rest`.
 */
function accumulate(mode: ProxyProtocolMode, pieces: Buffer[]): AccumulatedProxyHeader {
  const accumulator = new ProxyHeaderAccumulator(mode);
  let result: AccumulatedProxyHeader = { kind: 'incomplete' };
  for (const [i, piece] of pieces.entries()) {
    result = accumulator.push(piece);
    if (result.kind === 'complete') return { ...result, rest: Buffer.concat([result.rest, ...pieces.slice(i + 1)]) };
    if (result.kind === 'invalid') return result;
  }
  return result;
}

function summary(result: AccumulatedProxyHeader): unknown {
  return result.kind === 'complete' ? { kind: result.kind, header: result.header, rest: result.rest.toString('hex') } : result;
}

describe('PROXY protocol version 1: the specification’s lines', () => {
  it('parses TCP4 and TCP6 lines, and reports where the header ended', () => {
    const tcp4 = complete(parseV1(Buffer.concat([v1('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443'), Buffer.from('GET /')])));
    expect(tcp4.header).to.deep.equal({
      version: 1, command: 'proxy', family: 'IPv4', transport: 'stream',
      sourceAddress: '192.168.0.1', destinationAddress: '192.168.0.11', sourcePort: 56324, destinationPort: 443, tlvs: { tlvs: [] },
    });
    expect(tcp4.length).to.equal(47);
    const tcp6 = complete(parseV1(v1('PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 65535 0')));
    expect(tcp6.header).to.include({ family: 'IPv6', sourceAddress: '2001:db8::1', destinationAddress: '::1', sourcePort: 65535, destinationPort: 0 });
  });

  it('accepts the worst cases the specification gives: TCP6 in 104 bytes, UNKNOWN in 107', () => {
    const worstTcp6 = v1(`PROXY TCP6 ${FULL_V6} ${FULL_V6} 65535 65535`);
    expect(worstTcp6.length).to.equal(104);
    expect(complete(parseV1(worstTcp6)).length).to.equal(104);
    const worstUnknown = v1(`PROXY UNKNOWN ${FULL_V6} ${FULL_V6} 65535 65535`);
    expect(worstUnknown.length).to.equal(V1_MAX_BYTES);
    expect(complete(parseV1(worstUnknown)).header).to.deep.equal({ version: 1, command: 'local', tlvs: { tlvs: [] } });
    expect(complete(parseV1(v1('PROXY UNKNOWN'))).length).to.equal(15);
  });

  it('is incomplete for every strict prefix of a line', () => {
    const line = v1('PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535');
    for (let n = 0; n < line.length; n++) expect(parseV1(line.subarray(0, n)).kind, `prefix of ${n}`).to.equal('incomplete');
  });

  describe('rejects hostile lines', () => {
    const bad: Array<[string, string]> = [
      ['no CRLF within 107 bytes', `PROXY UNKNOWN ${'x'.repeat(100)}`],
      ['a CR at byte 107', `PROXY UNKNOWN ${'x'.repeat(92)}\r`],
      ['a bare LF', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'],
      ['a CR without LF', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX'],
      ['an unknown protocol', 'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'],
      ['lower case', 'proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'],
      ['two spaces', 'PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'],
      ['a missing port', 'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'],
      ['an extra field', 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n'],
      ['an IPv6 address under TCP4', 'PROXY TCP4 ::1 ::1 1 2\r\n'],
      ['an IPv4 address under TCP6', 'PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n'],
      ['an IPv6 zone', 'PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'],
      ['an octet over 255', 'PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n'],
      ['a port over 65535', 'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'],
      ['a port with a sign', 'PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n'],
      ['a port with leading zeros', 'PROXY TCP4 1.2.3.4 5.6.7.8 0443 2\r\n'],
      ['a host name', 'PROXY TCP4 example.com 5.6.7.8 1 2\r\n'],
    ];
    for (const [what, text] of bad) {
      it(what, () => {
        expect(reason(parseV1(Buffer.from(text, 'latin1')))).to.be.a('string');
      });
    }
  });
});

describe('PROXY protocol version 2: the specification’s binary header', () => {
  it('parses PROXY over TCP4 with its ports, and reports where the header ended', () => {
    const header = v2({ familyTransport: 0x11, addresses: inet4('10.1.2.3', '192.0.2.9', 40000, 443) });
    expect(header.length).to.equal(28);
    const parsed = complete(parseV2(Buffer.concat([header, Buffer.from([0x16, 0x03, 0x01])])));
    expect(parsed.length).to.equal(28);
    expect(parsed.header).to.deep.equal({
      version: 2, command: 'proxy', family: 'IPv4', transport: 'stream',
      sourceAddress: '10.1.2.3', destinationAddress: '192.0.2.9', sourcePort: 40000, destinationPort: 443, tlvs: { tlvs: [] },
    });
  });

  it('parses TCP6 addresses as Node prints them, IPv4-mapped ones included', () => {
    const parsed = complete(parseV2(v2({ familyTransport: 0x21, addresses: inet6('2001:db8:0:0:0:0:0:1', '0:0:0:0:0:ffff:a00:1', 1, 2) })));
    expect(parsed.header).to.include({ family: 'IPv6', sourceAddress: '2001:db8::1', destinationAddress: '::ffff:10.0.0.1', sourcePort: 1, destinationPort: 2 });
    const noRun = complete(parseV2(v2({ familyTransport: 0x21, addresses: inet6('1:0:2:0:3:0:4:0', '0:0:1:0:0:0:1:0', 1, 2) })));
    expect(noRun.header).to.include({ sourceAddress: '1:0:2:0:3:0:4:0', destinationAddress: '0:0:1::1:0' });
  });

  it('parses UNIX addresses (paths up to the NUL) and datagram transports', () => {
    const parsed = complete(parseV2(v2({ familyTransport: 0x31, addresses: unixAddresses('/run/client.sock', '/run/haproxy.sock') })));
    expect(parsed.header).to.deep.include({ family: 'unix', transport: 'stream', sourceAddress: '/run/client.sock', destinationAddress: '/run/haproxy.sock' });
    expect(parsed.header).to.not.have.property('sourcePort');
    expect(complete(parseV2(v2({ familyTransport: 0x12, addresses: inet4('1.2.3.4', '5.6.7.8', 1, 2) }))).header).to.include({ transport: 'dgram' });
  });

  it('LOCAL and UNSPEC carry no addresses to use, whatever the family and length', () => {
    expect(complete(parseV2(v2({ command: 'LOCAL', familyTransport: 0x00 }))).header).to.deep.equal({ version: 2, command: 'local', tlvs: { tlvs: [] } });
    const localInet = complete(parseV2(v2({ command: 'LOCAL', familyTransport: 0x11, addresses: inet4('1.2.3.4', '5.6.7.8', 1, 2) })));
    expect(localInet.header.command).to.equal('local');
    expect(complete(parseV2(v2({ command: 'LOCAL', familyTransport: 0x11 }))).header.command, 'LOCAL shorter than its family').to.equal('local');
    const unspec = complete(parseV2(v2({ familyTransport: 0x00, tlvs: [tlv(0x02, 'example.com')] })));
    expect(unspec.header).to.deep.include({ command: 'local' });
    expect(unspec.header.tlvs.authority).to.equal('example.com');
  });

  it('decodes ALPN, AUTHORITY, UNIQUE_ID, NETNS and SSL with its sub-TLVs, and keeps NOOP and unknown ones', () => {
    const ssl = Buffer.concat([
      Buffer.from([0x07, 0, 0, 0, 0]),
      tlv(0x21, 'TLSv1.3'),
      tlv(0x22, 'client.example'),
      tlv(0x23, 'TLS_AES_256_GCM_SHA384'),
      tlv(0x24, 'SHA256'),
      tlv(0x25, 'RSA2048'),
      tlv(0x7f, Buffer.from([1])),
    ]);
    const parsed = complete(
      parseV2(
        v2({
          familyTransport: 0x11,
          addresses: inet4('1.2.3.4', '5.6.7.8', 1, 2),
          tlvs: [tlv(0x01, 'h2'), tlv(0x02, 'shop.example'), tlv(0x04, Buffer.alloc(3)), tlv(0x05, Buffer.from('abc')), tlv(0x20, ssl), tlv(0x30, 'blue'), tlv(0xe0, 'custom')],
          crc: true,
        }),
      ),
    );
    const tlvs = parsed.header.tlvs;
    expect(tlvs).to.deep.include({ alpn: 'h2', authority: 'shop.example', netns: 'blue' });
    expect(tlvs.uniqueId?.toString()).to.equal('abc');
    expect(tlvs.ssl).to.deep.include({
      ssl: true, certInConnection: true, certInSession: true, verify: 0,
      version: 'TLSv1.3', commonName: 'client.example', cipher: 'TLS_AES_256_GCM_SHA384', signatureAlgorithm: 'SHA256', keyAlgorithm: 'RSA2048',
    });
    expect(tlvs.ssl?.tlvs.map((t) => t.type)).to.deep.equal([0x21, 0x22, 0x23, 0x24, 0x25, 0x7f]);
    expect(tlvs.tlvs.map((t) => t.type)).to.deep.equal([0x01, 0x02, 0x04, 0x05, 0x20, 0x30, 0xe0, 0x03]);
  });

  it('checks CRC32C when present: the standard check value, a right and a wrong checksum', () => {
    expect(crc32c(Buffer.from('123456789'))).to.equal(0xe3069283);
    const spec = { familyTransport: 0x11, addresses: inet4('1.2.3.4', '5.6.7.8', 1, 2) };
    expect(parseV2(v2({ ...spec, crc: true })).kind).to.equal('complete');
    expect(reason(parseV2(v2({ ...spec, crc: 0xdeadbeef })))).to.match(/CRC32C/);
  });

  it('refuses a header of more than 256 TLVs (21,841 empty ones fill 65,535 bytes), and takes 256', () => {
    const spec = { familyTransport: 0x11, addresses: inet4('1.2.3.4', '5.6.7.8', 1, 2) };
    const empties = (count: number): Buffer[] => Array.from({ length: count }, () => tlv(0xe0, Buffer.alloc(0)));
    expect(reason(parseV2(v2({ ...spec, tlvs: empties(21_841) })))).to.match(/more than 256 TLVs/);
    expect(reason(parseV2(v2({ ...spec, tlvs: empties(257) })))).to.match(/more than 256 TLVs/);
    expect(complete(parseV2(v2({ ...spec, tlvs: empties(256) }))).header.tlvs.tlvs).to.have.length(256);
    const ssl = Buffer.concat([Buffer.from([1, 0, 0, 0, 0]), ...empties(257)]);
    expect(reason(parseV2(v2({ ...spec, tlvs: [tlv(0x20, ssl)] })))).to.match(/more than 256 TLVs/);
  });

  it('is incomplete for every strict prefix of a header with TLVs', () => {
    const header = v2({ familyTransport: 0x21, addresses: inet6('1:0:0:0:0:0:0:1', '0:0:0:0:0:0:0:1', 1, 2), tlvs: [tlv(0x02, 'a.example')], crc: true });
    for (let n = 0; n < header.length; n++) expect(parseV2(header.subarray(0, n)).kind, `prefix of ${n}`).to.equal('incomplete');
    expect(parseV2(header).kind).to.equal('complete');
  });

  describe('rejects hostile headers, as soon as the bytes that show it arrive', () => {
    const base = v2({ familyTransport: 0x11, addresses: inet4('1.2.3.4', '5.6.7.8', 1, 2) });
    const withByte = (at: number, value: number): Buffer => {
      const copy = Buffer.from(base);
      copy[at] = value;
      return copy;
    };
    it('a broken signature, from its first wrong byte', () => {
      expect(reason(parseV2(Buffer.from([0x0d, 0x0a, 0x0d, 0x0b])))).to.match(/not a PROXY/);
    });
    it('a version other than 2, and commands other than LOCAL and PROXY', () => {
      expect(reason(parseV2(withByte(12, 0x11).subarray(0, 13)))).to.match(/version 1/);
      expect(reason(parseV2(withByte(12, 0x22).subarray(0, 13)))).to.match(/command 2/);
    });
    it('families and transports the specification says to reject', () => {
      for (const value of [0x41, 0x13, 0x10, 0x01, 0x02, 0xff]) expect(reason(parseV2(withByte(13, value).subarray(0, 14))), value.toString(16)).to.match(/family/);
    });
    it('a length shorter than the family’s addresses', () => {
      const short = Buffer.from(base);
      short.writeUInt16BE(11, 14);
      expect(reason(parseV2(short.subarray(0, 27)))).to.match(/shorter/);
      const inet6Short = v2({ familyTransport: 0x21, addresses: Buffer.alloc(35) });
      expect(reason(parseV2(inet6Short))).to.match(/shorter/);
      const unixShort = v2({ familyTransport: 0x31, addresses: Buffer.alloc(215) });
      expect(reason(parseV2(unixShort))).to.match(/shorter/);
    });
    it('TLVs that overrun the header, or a truncated TLV header', () => {
      const addresses = inet4('1.2.3.4', '5.6.7.8', 1, 2);
      expect(reason(parseV2(v2({ familyTransport: 0x11, addresses, tlvs: [Buffer.from([0x02, 0x00, 0x09, 0x61])] })))).to.match(/longer than/);
      expect(reason(parseV2(v2({ familyTransport: 0x11, addresses, tlvs: [Buffer.from([0x02, 0x00])] })))).to.match(/truncated/);
      expect(reason(parseV2(v2({ familyTransport: 0x11, addresses, tlvs: [tlv(0x20, Buffer.concat([Buffer.alloc(5), Buffer.from([0x21, 0, 5])]))] })))).to.match(/PP2_TYPE_SSL/);
      expect(reason(parseV2(v2({ familyTransport: 0x11, addresses, tlvs: [tlv(0x20, Buffer.alloc(4))] })))).to.match(/5 fixed bytes/);
    });
    it('text TLVs that are not UTF-8, a UNIQUE_ID over 128 bytes, a CRC32C of the wrong size', () => {
      const addresses = inet4('1.2.3.4', '5.6.7.8', 1, 2);
      expect(reason(parseV2(v2({ familyTransport: 0x11, addresses, tlvs: [tlv(0x02, Buffer.from([0xff, 0xfe]))] })))).to.match(/UTF-8/);
      expect(reason(parseV2(v2({ familyTransport: 0x11, addresses, tlvs: [tlv(0x05, Buffer.alloc(129))] })))).to.match(/128/);
      expect(reason(parseV2(v2({ familyTransport: 0x11, addresses, tlvs: [tlv(0x03, Buffer.alloc(2))] })))).to.match(/CRC32C/);
    });
  });
});

describe('ProxyHeaderAccumulator: however the bytes are cut into reads, the answer is the one-chunk answer', function () {
  this.timeout(60_000);
  const after = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05]);
  const headers: Array<[string, Buffer]> = [
    ['v1 TCP4', v1('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443')],
    ['v1 UNKNOWN', v1(`PROXY UNKNOWN ${FULL_V6} ${FULL_V6} 65535 65535`)],
    ['v2 TCP6 with TLVs', v2({ familyTransport: 0x21, addresses: inet6('1:0:0:0:0:0:0:1', '0:0:0:0:0:0:0:1', 1, 2), tlvs: [tlv(0x02, 'a.example')], crc: true })],
    ['v2 LOCAL', v2({ command: 'LOCAL', familyTransport: 0x00 })],
  ];

  it('completes each header, and puts back what followed it, cut anywhere into up to three reads', () => {
    for (const [label, header] of headers) {
      const stream = Buffer.concat([header, after]);
      const whole = accumulate('any', [stream]);
      expect(whole.kind, label).to.equal('complete');
      if (whole.kind === 'complete') expect(whole.rest.equals(after), label).to.equal(true);
      for (let i = 0; i <= stream.length; i++) {
        for (let j = i; j <= stream.length; j += 7) {
          const cut = accumulate('any', [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]);
          expect(summary(cut), `${label} cut at ${i}, ${j}`).to.deep.equal(summary(whole));
        }
      }
    }
  });

  it('byte by byte, a 65551-byte version 2 header completes in linear time and holds no more than itself', () => {
    const tlvs = [tlv(0xe0, Buffer.alloc(0xffff - 12 - 3))];
    const header = v2({ familyTransport: 0x11, addresses: inet4('1.2.3.4', '5.6.7.8', 1, 2), tlvs });
    expect(header.length).to.equal(V2_MAX_BYTES);
    const accumulator = new ProxyHeaderAccumulator('v2');
    let result: AccumulatedProxyHeader = { kind: 'incomplete' };
    for (let i = 0; i < header.length; i++) result = accumulator.push(header.subarray(i, i + 1));
    expect(result.kind).to.equal('complete');
    expect(accumulator.peakBufferedBytes).to.equal(V2_MAX_BYTES);
    expect(accumulator.bufferedBytes).to.equal(0);
  });

  it('holds at most 107 bytes of a version 1 line before rejecting it', () => {
    const accumulator = new ProxyHeaderAccumulator('v1');
    let result: AccumulatedProxyHeader = { kind: 'incomplete' };
    let pushed = 0;
    while (result.kind === 'incomplete' && pushed < 1000) {
      result = accumulator.push(Buffer.from(pushed < 6 ? 'PROXY '[pushed] ?? '' : 'x'));
      pushed++;
    }
    expect(reason(result)).to.match(/107/);
    expect(pushed).to.equal(V1_MAX_BYTES);
  });

  it('rejects a missing header from the first byte: a TLS ClientHello, an HTTP request', () => {
    expect(reason(accumulate('any', [Buffer.from([0x16])]))).to.match(/no PROXY protocol header/);
    expect(reason(accumulate('any', [Buffer.from('G')]))).to.match(/no PROXY protocol header/);
  });

  it('rejects the version the listener does not accept, from the first byte', () => {
    expect(reason(accumulate('v1', [SIGNATURE.subarray(0, 1)]))).to.match(/version 2 .* only v1/);
    expect(reason(accumulate('v2', [Buffer.from('P')]))).to.match(/version 1 .* only v2/);
  });

  describe('fuzzing', function () {
    const modes: ProxyProtocolMode[] = ['v1', 'v2', 'any'];
    it('never throws on arbitrary bytes, nor on bytes that start like a header', () => {
      const starts = [Buffer.alloc(0), Buffer.from('PROXY '), Buffer.from('PROXY TCP4 '), Buffer.from('PROXY TCP6 '), SIGNATURE, Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x11])])];
      fc.assert(
        fc.property(fc.constantFrom(...starts), fc.uint8Array({ maxLength: 512 }), fc.constantFrom(...modes), (start, tail, mode) => {
          const bytes = Buffer.concat([start, tail]);
          const result = accumulate(mode, [bytes]);
          if (result.kind === 'complete') expect(result.rest.length).to.be.lessThan(bytes.length);
          if (bytes.length >= V1_MAX_BYTES && bytes[0] === 0x50) expect(result.kind).to.not.equal('incomplete');
        }),
        { numRuns: 10_000 },
      );
    });

    it('never throws on mutations of real headers, and settles no answer that more bytes would change', () => {
      const bases = headers.map(([, header]) => header);
      fc.assert(
        fc.property(
          fc.constantFrom(...bases),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
          fc.nat(),
          fc.uint8Array({ maxLength: 64 }),
          (base, mutations, cut, extra) => {
            const bytes = Buffer.from(base);
            for (const [at, value] of mutations) bytes[at % bytes.length] = value;
            const whole = accumulate('any', [bytes]);
            const prefix = bytes.subarray(0, cut % (bytes.length + 1));
            const early = accumulate('any', [prefix]);
            // An answer given on a prefix is the answer for every continuation of it.
            if (early.kind !== 'incomplete') {
              const continued = Buffer.concat([prefix, Buffer.from(extra)]);
              expect(summary(accumulate('any', [prefix, Buffer.from(extra)]))).to.deep.equal(summary(accumulate('any', [continued])));
              expect(accumulate('any', [continued]).kind).to.equal(early.kind);
            }
            if (early.kind === 'invalid') expect(whole.kind).to.equal('invalid');
            if (early.kind === 'complete') expect(summary(whole)).to.deep.equal(summary(accumulate('any', [bytes])));
          },
        ),
        { numRuns: 10_000 },
      );
    });
  });
});

describe('trustedProxies: addresses and CIDR ranges, IPv4 and IPv6, v4-mapped read as IPv4', () => {
  it('allows listed addresses and ranges, and nothing else', () => {
    const trusted = new TrustedProxies(['127.0.0.1', '10.0.0.0/8', '2001:db8::/32', '::1', '::ffff:192.0.2.0/120']);
    for (const allowed of ['127.0.0.1', '::ffff:127.0.0.1', '10.200.1.1', '::ffff:10.0.0.1', '2001:db8:1::5', '::1', '192.0.2.77', '::ffff:192.0.2.1']) {
      expect(trusted.allows(allowed), allowed).to.equal(true);
    }
    for (const refused of ['127.0.0.2', '11.0.0.1', '2001:db9::1', '::2', '192.0.3.1', undefined, 'not-an-ip', 'fe80::1%lo']) {
      expect(trusted.allows(refused), String(refused)).to.equal(false);
    }
  });

  it('gives the same verdicts when asked again, also after more distinct peers than it remembers', () => {
    const trusted = new TrustedProxies(['10.0.0.0/8', '::1']);
    const ask = (): boolean[] => ['10.1.2.3', '::ffff:10.9.9.9', '::1', '11.0.0.1', '::2'].map((address) => trusted.allows(address));
    const first = ask();
    expect(first).to.deep.equal([true, true, true, false, false]);
    expect(ask()).to.deep.equal(first);
    // 3,000 peers, some in the range and some not: past the table's bound (it is emptied when full).
    for (let i = 0; i < 3000; i++) {
      const address = `${i % 2 === 0 ? 10 : 12}.0.${Math.floor(i / 256)}.${i % 256}`;
      expect(trusted.allows(address), address).to.equal(i % 2 === 0);
    }
    expect(ask()).to.deep.equal(first);
  });

  it('refuses entries that are not addresses or ranges, and an empty list', () => {
    for (const entries of [[], ['10.0.0.0/33'], ['::/129'], ['example.com'], ['10.0.0.1/'], ['10.0.0.0/-1'], [7], 'x', undefined]) {
      expect(() => new TrustedProxies(entries), JSON.stringify(entries)).to.throw().with.property('code', 'ERR_INVALID_OPTION');
    }
  });
});
