// The handler module of the `workers` contender (benchmarks/workers_server.ts): the same
// handler every benchmark server runs, socket.end('x') once the handshake is done.
import type net from 'node:net';

const noop = (): void => {};

export default function handler(socket: net.Socket): void {
  socket.on('error', noop);
  socket.end('x');
}
