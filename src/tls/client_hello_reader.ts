// Reads a connection's first bytes until they settle the ClientHello (see
// client_hello_accumulator.ts for what that may cost), then puts them back so the TLSSocket
// created next reads them as if untouched (Node feeds a wrapped socket's buffered data to the
// TLS layer).
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

export function readClientHello(
  socket: net.Socket,
  onHello: (hello: ClientHelloSummary) => void,
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
    if (result.kind === 'invalid') {
      onFailure(codedError(ErrorCodes.TLS_CLIENT_HELLO_INVALID, `invalid TLS ClientHello: ${result.reason}`));
      return;
    }
    socket.pause();
    socket.unshift(result.bytes);
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
