// Reads a connection's first bytes until they hold a whole ClientHello (bounded by the
// parser's cap), then puts them back so the TLSSocket created next reads them as if
// untouched (Node feeds a wrapped socket's buffered data to the TLS layer).
import type net from 'node:net';
import { parseClientHello } from './client_hello.js';
import { codedError, ErrorCodes } from '../errors.js';
import type { CodedError } from '../errors.js';

export interface ClientHelloSummary {
  servername?: string;
  alpnProtocols: string[];
}

const RECORD_HEADER_BYTES = 5;
const MAX_RECORD_BODY = 16 * 1024;
const HANDSHAKE_RECORD = 0x16;

/**
 * True when the bytes end on a record boundary (or a record header is bogus, which the parser
 * rejects). Parsing only then keeps a client that sends one byte per packet from costing a
 * parse of the whole buffer per byte.
 */
function endsOnRecordBoundary(data: Buffer): boolean {
  let offset = 0;
  while (offset < data.length) {
    if (data[offset] !== HANDSHAKE_RECORD) return true;
    if (offset + RECORD_HEADER_BYTES > data.length) return false;
    const bodyLength = data.readUInt16BE(offset + 3);
    if (bodyLength > MAX_RECORD_BODY) return true;
    offset += RECORD_HEADER_BYTES + bodyLength;
  }
  return offset === data.length;
}

export function readClientHello(
  socket: net.Socket,
  onHello: (hello: ClientHelloSummary) => void,
  onFailure: (error: CodedError) => void,
): void {
  let buffered: Buffer = Buffer.alloc(0);
  const finish = (): void => {
    socket.off('data', onData);
    socket.off('end', onEnd);
  };
  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    if (!endsOnRecordBoundary(buffered)) return;
    const parsed = parseClientHello(buffered);
    if (parsed.kind === 'incomplete') return;
    finish();
    if (parsed.kind === 'invalid') {
      onFailure(codedError(ErrorCodes.TLS_CLIENT_HELLO_INVALID, `invalid TLS ClientHello: ${parsed.reason}`));
      return;
    }
    socket.pause();
    socket.unshift(buffered);
    const hello: ClientHelloSummary = { alpnProtocols: parsed.alpnProtocols };
    if (parsed.servername !== undefined) hello.servername = parsed.servername;
    onHello(hello);
  };
  const onEnd = (): void => {
    finish();
    onFailure(codedError(ErrorCodes.TLS_CLIENT_HELLO_INVALID, 'the client closed before sending a whole ClientHello'));
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
}
