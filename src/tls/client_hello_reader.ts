// Reads a connection's first bytes until they settle the ClientHello (see
// client_hello_accumulator.ts for what that may cost), then puts them back so the TLSSocket
// created next reads them as if untouched (Node feeds a wrapped socket's buffered data to the
// TLS layer).
//
// The reader only learns the server name and the ALPN list; it never refuses a client. Bytes
// it cannot make sense of, or a hello over its cap, are put back just the same and reported as
// no hello: OpenSSL then reads them as tls.createServer's would, and answers with its own
// alert (decode_error, record_overflow, protocol_version, ...) or serves a hello this parser is
// stricter about (a 40 KB hello in several records, an empty record before it, a UTF-8 name).
// Memory stays bounded by the cap: beyond it OpenSSL reads the rest off the socket itself.
import type net from 'node:net';
import { ClientHelloAccumulator } from './client_hello_accumulator.js';
import { codedError, ErrorCodes } from '../errors.js';
import type { CodedError } from '../errors.js';

export interface ClientHelloSummary {
  servername?: string;
  alpnProtocols: string[];
}

/** What the reader holds, for whoever watches its cost (tests, diagnostics). */
export interface ClientHelloReading {
  /** Bytes held now; 0 once the hello is settled either way. */
  readonly bufferedBytes: number;
  /** The most bytes held at once. */
  readonly peakBufferedBytes: number;
}

/**
 * Calls `onHello` once the first bytes settle: with the hello's summary, or with undefined
 * when they are not a hello the parser reads (OpenSSL's to answer in full). Either way every
 * byte read is back on `socket`, which is left paused. `onFailure` gets only the client's FIN
 * before the bytes settled (ERR_CLIENT_CLOSED); a reset stays the socket's own 'error'.
 */
export function readClientHello(
  socket: net.Socket,
  onHello: (hello: ClientHelloSummary | undefined) => void,
  onFailure: (error: CodedError) => void,
): ClientHelloReading {
  const accumulator = new ClientHelloAccumulator();
  const finish = (): void => {
    socket.off('data', onData);
    socket.off('end', onEnd);
  };
  const onData = (chunk: Buffer): void => {
    const result = accumulator.push(chunk);
    if (result.kind === 'incomplete') return;
    finish();
    socket.pause();
    socket.unshift(result.bytes);
    if (result.kind === 'invalid') {
      onHello(undefined);
      return;
    }
    const hello: ClientHelloSummary = { alpnProtocols: result.alpnProtocols };
    if (result.servername !== undefined) hello.servername = result.servername;
    onHello(hello);
  };
  const onEnd = (): void => {
    finish();
    // The client's FIN, not a bad hello: the same cause, and code, as a close later in setup.
    onFailure(codedError(ErrorCodes.CLIENT_CLOSED, 'the client closed the connection before sending a whole ClientHello'));
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  return accumulator;
}
