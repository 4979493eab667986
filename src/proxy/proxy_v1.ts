// Version 1 of the PROXY protocol: one line of text, "PROXY TCP4 <src> <dst> <sport> <dport>\r\n"
// (or TCP6, or UNKNOWN), at most 107 bytes with its CRLF. Parsed strictly: single spaces,
// addresses of the announced family, decimal ports up to 65535.
import net from 'node:net';
import { INCOMPLETE, V1_MAX_BYTES, V1_PREFIX, invalid, startsLike } from './proxy_header.js';
import type { ProxyHeaderParse } from './proxy_header.js';

const CR = 0x0d;
const LF = 0x0a;
const PORT = /^(?:0|[1-9][0-9]{0,4})$/;

function port(text: string): number | undefined {
  if (!PORT.test(text)) return undefined;
  const value = Number(text);
  return value <= 0xffff ? value : undefined;
}

/** The address as Node prints it (compressed IPv6), or undefined if it is not one of `family`. */
function address(text: string, family: 'IPv4' | 'IPv6'): string | undefined {
  if (family === 'IPv4') return net.isIPv4(text) ? text : undefined;
  // Node's isIPv6 also takes a zone ('fe80::1%eth0'), which has no meaning across hosts.
  if (text.includes('%') || !net.isIPv6(text)) return undefined;
  return new net.SocketAddress({ address: text, family: 'ipv6' }).address;
}

/** Parses `bytes` (everything received so far) as a version 1 header. */
export function parseV1(bytes: Uint8Array): ProxyHeaderParse {
  if (!startsLike(bytes, V1_PREFIX)) return invalid('not a PROXY protocol header');
  const limit = Math.min(bytes.length, V1_MAX_BYTES);
  let end = -1;
  for (let i = 0; i < limit; i++) {
    if (bytes[i] === LF) return invalid('a line feed without a carriage return in the version 1 header');
    if (bytes[i] === CR) {
      end = i;
      break;
    }
  }
  if (end < 0) return bytes.length >= V1_MAX_BYTES ? invalid(`no CRLF within the first ${V1_MAX_BYTES} bytes of a version 1 header`) : INCOMPLETE;
  if (end + 1 >= bytes.length) return end + 1 >= V1_MAX_BYTES ? invalid(`no CRLF within the first ${V1_MAX_BYTES} bytes of a version 1 header`) : INCOMPLETE;
  if (bytes[end + 1] !== LF) return invalid('a carriage return without a line feed in the version 1 header');
  const length = end + 2;
  const fields = Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('latin1').split(' ');
  const protocol = fields[1];
  // "the receiver must ignore anything presented before the CRLF is found" after UNKNOWN.
  if (protocol === 'UNKNOWN') return { kind: 'complete', header: { version: 1, command: 'local', tlvs: { tlvs: [] } }, length };
  if (protocol !== 'TCP4' && protocol !== 'TCP6') return invalid(`unknown version 1 protocol ${JSON.stringify(protocol ?? '')}`);
  if (fields.length !== 6) return invalid('a version 1 header needs exactly five fields after PROXY, one space apart');
  const family = protocol === 'TCP4' ? 'IPv4' : 'IPv6';
  const [, , sourceText = '', destinationText = '', sourcePortText = '', destinationPortText = ''] = fields;
  const sourceAddress = address(sourceText, family);
  const destinationAddress = address(destinationText, family);
  if (sourceAddress === undefined || destinationAddress === undefined) return invalid(`a ${protocol} header with an address that is not ${family}`);
  const sourcePort = port(sourcePortText);
  const destinationPort = port(destinationPortText);
  if (sourcePort === undefined || destinationPort === undefined) return invalid('a version 1 port that is not a decimal number from 0 to 65535');
  return {
    kind: 'complete',
    header: { version: 1, command: 'proxy', family, transport: 'stream', sourceAddress, destinationAddress, sourcePort, destinationPort, tlvs: { tlvs: [] } },
    length,
  };
}
