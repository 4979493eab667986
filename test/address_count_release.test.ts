// maxConnectionsPerAddress counts a connection out when it closes, whatever its handler did to
// the socket's listeners: a handler may drop them (removeAllListeners, as some protocol
// libraries do when they take a socket over), and a count that is never given back refuses
// that client for good once its connections have all closed. Real clients on loopback, one
// per source address from 127.0.0.0/8, and real PROXY headers.
import net from 'node:net';
import { expect } from 'chai';
import { TCPListener } from '../src/tcp_listener.js';
import { createLocalTCPListener } from '../src/index.js';
import type { WorkersHandlerConfig } from './fixtures/workers_handler.js';
import { compiledFixture } from './support/paths.js';
import type { TCPConnectionInfo, TCPListenerOptions } from '../src/tcp_listener.js';
import { v1 } from './support/proxy_headers.js';
import { BACKENDS, useCleanup } from './support/tls_harness.js';
import { connect, waitUntil, within } from './support/sockets.js';
import type { Client } from './support/sockets.js';

type Removal = "removeAllListeners('close')" | 'removeAllListeners()';

/** Greets, drops the socket's 'close' listeners (or all of them), and ends the connection. */
function greetDropAndEnd(removal: Removal): (socket: net.Socket, info: TCPConnectionInfo) => void {
  return (socket, info) => {
    if (removal === 'removeAllListeners()') socket.removeAllListeners();
    else socket.removeAllListeners('close');
    socket.on('error', () => undefined);
    socket.end(`hello ${info.remoteAddress ?? socket.remoteAddress ?? '?'}\n`);
    socket.resume();
  };
}

describe('maxConnectionsPerAddress: a handler that drops the socket\'s close listeners does not keep its address counted', function () {
  const cleanup = useCleanup();

  async function start(removal: Removal, options: Omit<TCPListenerOptions, 'port'>) {
    const listener = new TCPListener({ port: 0, host: '127.0.0.1', ...options }, greetDropAndEnd(removal));
    cleanup.add(() => listener.close());
    const { port } = await within(listener.listen(), 'the listener');
    return { listener, port };
  }

  async function connectFrom(port: number, localAddress: string, header?: Buffer): Promise<Client> {
    const client = await connect(port, '127.0.0.1', undefined, localAddress);
    cleanup.add(() => client.destroy());
    if (header !== undefined) client.socket.write(header);
    return client;
  }

  /** Three connections one after another, each closed before the next: all served with a limit of 1. */
  async function threeInTurn(listener: TCPListener, port: number, localAddress: string, header?: Buffer): Promise<string[]> {
    const lines: string[] = [];
    for (let i = 0; i < 3; i++) {
      const client = await connectFrom(port, localAddress, header);
      await client.whenClosed();
      lines.push(client.received);
      await waitUntil(() => listener.stats().active === 0, 'the connection released');
    }
    return lines;
  }

  for (const backend of BACKENDS) {
    for (const removal of ["removeAllListeners('close')", 'removeAllListeners()'] as const) {
      it(`${backend} backend, ${removal} in a plain-TCP handler: one connection at a time from one address is served every time, the books balance, close() finishes`, async function () {
        this.timeout(15_000);
        const { listener, port } = await start(removal, { backend, maxConnectionsPerAddress: 1 });
        expect(await threeInTurn(listener, port, '127.0.2.1')).to.deep.equal(Array(3).fill('hello 127.0.2.1\n'));
        expect(listener.stats()).to.include({ accepted: 3, closed: 3, active: 0, leaked: 0 });
        expect(listener.stats().rejected.maxConnectionsPerAddress).to.equal(0);
        await within(listener.close(), 'close() to finish');
      });

      it(`${backend} backend behind a PROXY balancer, ${removal} in the handler: one client at a time is served every time, close() finishes`, async function () {
        this.timeout(15_000);
        const { listener, port } = await start(removal, { backend, proxyProtocol: 'v1', trustedProxies: ['127.0.0.1'], maxConnectionsPerAddress: 1 });
        const header = v1('PROXY TCP4 198.51.100.9 192.0.2.1 40000 443');
        // The count is the header's client's, whatever the socket's peer.
        expect(await threeInTurn(listener, port, '127.0.0.1', header)).to.deep.equal(Array(3).fill('hello 198.51.100.9\n'));
        expect(listener.stats()).to.include({ accepted: 3, closed: 3, active: 0, leaked: 0 });
        expect(listener.stats().rejected.maxConnectionsPerAddress).to.equal(0);
        await within(listener.close(), 'close() to finish');
      });
    }
  }

  describe('with workers (the handler in a worker thread, the count in the listener-wide table)', () => {
    const workers = {
      count: 2,
      module: compiledFixture('workers_handler'),
      workerData: { mode: 'greet', showPeer: true, dropCloseListeners: true } satisfies WorkersHandlerConfig,
    };

    for (const proxied of [false, true]) {
      it(`${proxied ? 'behind a PROXY balancer' : 'plain TCP'}: one connection at a time from one address is served every time, close() finishes`, async function () {
        this.timeout(30_000);
        const listener = createLocalTCPListener({
          port: 0,
          maxConnectionsPerAddress: 1,
          workers,
          ...(proxied ? { proxyProtocol: 'any' as const, trustedProxies: ['127.0.0.1'] } : {}),
        });
        cleanup.add(() => listener.close());
        const { port } = await within(listener.listen(), 'the workers to start', 10_000);
        const header = proxied ? v1('PROXY TCP4 198.51.100.9 192.0.2.1 40000 443') : undefined;
        const served: string[] = [];
        for (let i = 0; i < 3; i++) {
          const client = await connectFrom(port, proxied ? '127.0.0.1' : '127.0.2.2', header);
          await client.whenClosed();
          served.push(client.received);
          await waitUntil(() => listener.stats().active === 0, 'the connection released');
        }
        // "<threadId> <id> <client>": the workers' handler does not see a plain socket's peer.
        const greeting = proxied ? /^\d+ \d+ 198\.51\.100\.9\n$/ : /^\d+ \d+ \?\n$/;
        expect(served.filter((line) => greeting.test(line)), JSON.stringify(served)).to.have.length(3);
        expect(listener.stats().rejected.maxConnectionsPerAddress).to.equal(0);
        await within(listener.close(), 'close() to finish', 10_000);
      });
    }
  });
});
