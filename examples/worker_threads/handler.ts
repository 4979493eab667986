// The handler module of examples/worker_threads.ts: each worker thread imports it and serves
// the connections handed to it. Same contract as a handler given to createListener: the
// returned promise is the connection's lifetime.
import readline from 'node:readline';
import { threadId } from 'node:worker_threads';
import type { ConnectionHandler } from '../../src/index.js'; // 'native-tls-listener' in your code

const handler: ConnectionHandler = async (socket, info) => {
  socket.write(`hello from worker thread ${threadId}, its connection ${info.id}\n`);
  for await (const line of readline.createInterface({ input: socket, crlfDelay: Infinity })) {
    if (line === 'bye') break;
    socket.write(`${line.toUpperCase()}\n`);
  }
};
export default handler;
