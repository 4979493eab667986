// Reads a connection's PROXY protocol header off its socket, then puts back whatever followed
// it, so the next stage (the ClientHello reader, OpenSSL, or a TCP handler) reads the
// client's stream from its first byte, as if the header had never been there.
import type net from 'node:net';
import { ProxyHeaderAccumulator } from './proxy_header_accumulator.js';
import type { ProxyProtocolMode } from './proxy_header_accumulator.js';
import type { ProxyHeader } from './proxy_header.js';
import { codedError, ErrorCodes } from '../errors.js';
import type { CodedError } from '../errors.js';

export function readProxyHeader(
  socket: net.Socket,
  mode: ProxyProtocolMode,
  /** `rest`: bytes that followed the header in what was read, put back for the next stage. */
  onHeader: (header: ProxyHeader, rest: number) => void,
  onFailure: (error: CodedError) => void,
): ProxyHeaderAccumulator {
  const accumulator = new ProxyHeaderAccumulator(mode);
  const finish = (): void => {
    socket.off('data', onData);
    socket.off('end', onEnd);
  };
  const onData = (chunk: Buffer): void => {
    const result = accumulator.push(chunk);
    if (result.kind === 'incomplete') return;
    finish();
    if (result.kind === 'invalid') {
      onFailure(codedError(ErrorCodes.PROXY_PROTOCOL_INVALID, `invalid PROXY protocol header: ${result.reason}`));
      return;
    }
    socket.pause();
    if (result.rest.length > 0) socket.unshift(result.rest);
    // Back to the state of a socket nobody has read yet: the next reader's first 'data'
    // listener (or pipe, or TLSSocket) starts the flow, and nothing is emitted to no one
    // in between (a paused stream would stay paused under a new 'data' listener).
    // (Readable's readableFlowing has a setter; Node's types declare it read-only.)
    (socket as { readableFlowing: boolean | null }).readableFlowing = null;
    onHeader(result.header, result.rest.length);
  };
  const onEnd = (): void => {
    finish();
    onFailure(codedError(ErrorCodes.CLIENT_CLOSED, 'the client closed the connection before sending a whole PROXY protocol header'));
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  return accumulator;
}
