// The protocol that clients without SNI reach: one line in, one line out. `stats` answers with
// the listener's statistics as JSON, `quit` ends the connection, anything else is echoed.
// Lines are bounded so that a client cannot make the server buffer without limit.
import type tls from 'node:tls';
import type { ConnectionInfo, ListenerStats } from '../index.js';

export const MAX_LINE_BYTES = 4096;

export const COMMANDS_HELP = 'commands: stats, quit, help; any other line is echoed';

function describeConnection(socket: tls.TLSSocket, info: ConnectionInfo, servedBy?: string): string {
  const parts = [`connection ${info.id}`, socket.getProtocol() ?? 'TLS', 'no SNI'];
  if (info.alpnProtocol !== false) parts.push(`ALPN ${info.alpnProtocol}`);
  const leaf = info.peerCertificateChain[0];
  if (leaf) parts.push(`client certificate ${leaf.subject.replace(/\n/g, ', ')}`);
  if (servedBy !== undefined) parts.push(servedBy);
  return parts.join(', ');
}

/**
 * A connection handler serving the line protocol. Its promise settles when the client quits,
 * ends its side or goes away, and the listener then closes the connection gracefully.
 * `stats` may answer later (a worker thread asks the main thread): the lines after `stats` wait
 * for its answer, so answers keep the order of the lines. `servedBy` ('worker thread 3') is
 * added to the greeting.
 */
export function createLineProtocolHandler(
  stats: () => ListenerStats | Promise<ListenerStats>,
  servedBy?: string,
): (socket: tls.TLSSocket, info: ConnectionInfo) => Promise<void> {
  return (socket, info) =>
    new Promise<void>((resolve) => {
      let pending: Buffer = Buffer.alloc(0);
      let finished = false;
      /** A `stats` answer is being waited for: the lines after it wait too. */
      let waiting = false;
      /** The client ended its side: finish once the lines it sent are answered. */
      let ended = false;
      const finish = (): void => {
        finished = true;
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', finish);
        socket.off('error', finish);
        resolve();
      };
      const answerStats = (): void => {
        let answer: ListenerStats | Promise<ListenerStats>;
        try {
          answer = stats();
        } catch (error) {
          socket.write(`error: no statistics: ${(error as Error).message}\n`);
          return;
        }
        if (!(answer instanceof Promise)) {
          socket.write(`${JSON.stringify(answer)}\n`);
          return;
        }
        waiting = true;
        socket.pause();
        answer
          .then(
            (value) => `${JSON.stringify(value)}\n`,
            (error: unknown) => `error: no statistics: ${(error as Error).message}\n`,
          )
          .then((text) => {
            waiting = false;
            if (finished) return;
            socket.write(text);
            socket.resume();
            serveLines();
            if (ended && !waiting && !finished) finish();
          });
      };
      /** Answers one line; false when the client quit. */
      const answer = (line: string): boolean => {
        const command = line.trim().toLowerCase();
        if (command === 'quit') {
          socket.write('bye\n');
          return false;
        }
        if (command === 'stats') answerStats();
        else if (command === 'help') socket.write(`${COMMANDS_HELP}\n`);
        else socket.write(`${line}\n`);
        return true;
      };
      const serveLines = (): void => {
        let newline: number;
        while (!waiting && (newline = pending.indexOf(0x0a)) !== -1) {
          if (newline > MAX_LINE_BYTES) break;
          const line = pending.subarray(0, newline).toString('utf8').replace(/\r$/, '');
          pending = pending.subarray(newline + 1);
          if (!answer(line)) {
            finish();
            return;
          }
        }
        // What is left holds no newline within the limit: a line too long to serve.
        const firstNewline = pending.indexOf(0x0a);
        if (!finished && pending.length > MAX_LINE_BYTES && (firstNewline === -1 || firstNewline > MAX_LINE_BYTES)) {
          socket.write(`error: line longer than ${MAX_LINE_BYTES} bytes\n`);
          finish();
        }
      };
      const onData = (chunk: Buffer): void => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        serveLines();
      };
      const onEnd = (): void => {
        ended = true;
        if (!waiting) finish();
      };
      socket.on('data', onData);
      socket.once('end', onEnd);
      socket.once('close', finish);
      socket.once('error', finish);
      socket.write(`native-tls-listener: ${describeConnection(socket, info, servedBy)}; ${COMMANDS_HELP}\n`);
    });
}
