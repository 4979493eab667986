// The protocol that clients without SNI reach: one line in, one line out. `stats` answers with
// the listener's statistics as JSON, `quit` ends the connection, anything else is echoed.
// Lines are bounded so that a client cannot make the server buffer without limit.
import type tls from 'node:tls';
import type { ConnectionInfo, ListenerStats } from '../index.js';

export const MAX_LINE_BYTES = 4096;

export const COMMANDS_HELP = 'commands: stats, quit, help; any other line is echoed';

function describeConnection(socket: tls.TLSSocket, info: ConnectionInfo): string {
  const parts = [`connection ${info.id}`, socket.getProtocol() ?? 'TLS', 'no SNI'];
  if (info.alpnProtocol !== false) parts.push(`ALPN ${info.alpnProtocol}`);
  const leaf = info.peerCertificateChain[0];
  if (leaf) parts.push(`client certificate ${leaf.subject.replace(/\n/g, ', ')}`);
  return parts.join(', ');
}

/**
 * A connection handler serving the line protocol. Its promise settles when the client quits,
 * ends its side or goes away, and the listener then closes the connection gracefully.
 */
export function createLineProtocolHandler(stats: () => ListenerStats): (socket: tls.TLSSocket, info: ConnectionInfo) => Promise<void> {
  return (socket, info) =>
    new Promise<void>((resolve) => {
      let pending: Buffer = Buffer.alloc(0);
      const finish = (): void => {
        socket.off('data', onData);
        socket.off('end', finish);
        socket.off('close', finish);
        socket.off('error', finish);
        resolve();
      };
      const answer = (line: string): boolean => {
        const command = line.trim().toLowerCase();
        if (command === 'quit') {
          socket.write('bye\n');
          return false;
        }
        if (command === 'stats') socket.write(`${JSON.stringify(stats())}\n`);
        else if (command === 'help') socket.write(`${COMMANDS_HELP}\n`);
        else socket.write(`${line}\n`);
        return true;
      };
      const onData = (chunk: Buffer): void => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        let newline: number;
        while ((newline = pending.indexOf(0x0a)) !== -1) {
          if (newline > MAX_LINE_BYTES) break;
          const line = pending.subarray(0, newline).toString('utf8').replace(/\r$/, '');
          pending = pending.subarray(newline + 1);
          if (!answer(line)) {
            finish();
            return;
          }
        }
        // What is left holds no newline within the limit: a line too long to serve.
        if (pending.length > MAX_LINE_BYTES) {
          socket.write(`error: line longer than ${MAX_LINE_BYTES} bytes\n`);
          finish();
        }
      };
      socket.on('data', onData);
      socket.once('end', finish);
      socket.once('close', finish);
      socket.once('error', finish);
      socket.write(`native-tls-listener: ${describeConnection(socket, info)}; ${COMMANDS_HELP}\n`);
    });
}
