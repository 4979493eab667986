// The batch hand-off between the native acceptor and JS: what the acceptor closes after each
// batch callback is decided by the slot's state, and it is always the descriptor it accepted,
// never a number JS left in the slot; a descriptor an adopter wrapped before it threw belongs
// to that socket's handle and is closed once, by the handle.
import fs from 'node:fs';
import type net from 'node:net';
import { expect } from 'chai';
import { adoptDescriptor, TCPListener } from '../src/index.js';
import type { CodedError, DescriptorAdopter, ListenerStats } from '../src/index.js';
import { loadNativeBinding } from '../src/native/load.js';
import type { NativeBinding } from '../src/native/binding.js';
import {
  Cleanup,
  inodeOpen,
  openDescriptors,
  socketInodeOf,
  tcpPeer,
  waitForFdCount,
  waitUntil,
  within,
} from './support/registry_support.js';

function book(stats: ListenerStats): Pick<ListenerStats, 'accepted' | 'closed' | 'active' | 'leaked'> {
  return { accepted: stats.accepted, closed: stats.closed, active: stats.active, leaked: stats.leaked };
}

/** What descriptor `fd` of this process points to, or undefined when it is closed. */
function linkOf(fd: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** A handler that keeps the connection until its peer (or the listener) closes it. */
function holdOpen(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

describe('an adopter that wraps the descriptor in a socket and then throws: the socket keeps it, closed once', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  it('native backend: the wrapped socket still works both ways, the books count the connection closed, descriptors balance', async () => {
    const baseline = openDescriptors();
    const wrapped: net.Socket[] = [];
    // The adopter gets as far as a net.Socket (whose libuv handle now owns the descriptor),
    // then fails. Closing the descriptor after that would pull it from under the socket, and
    // the socket's own close would then close the number a second time.
    // The slot, passed on, says so from the moment the handle has it.
    const wrapThenThrow: DescriptorAdopter = (fd, slot) => {
      wrapped.push(adoptDescriptor(fd, slot));
      throw new Error('set-up failed after wrapping');
    };
    const listener = new TCPListener({ port: 0, host: '127.0.0.1', backend: 'native' }, holdOpen, { adoptDescriptor: wrapThenThrow });
    cleanup.add(() => listener.close());
    const errors: CodedError[] = [];
    listener.on('connectionError', (error: CodedError) => errors.push(error));
    const { port } = await listener.listen();

    const peer = await tcpPeer(port);
    cleanup.add(() => peer.destroy());
    await waitUntil(() => errors.length === 1, 'the failed adoption to be reported');
    expect(errors.map((error) => error.code)).to.deep.equal(['ERR_CONNECTION_SETUP_FAILED']);
    expect(book(listener.stats())).to.deep.equal({ accepted: 1, closed: 1, active: 0, leaked: 0 });

    const [socket] = wrapped;
    if (socket === undefined) throw new Error('the adopter saw no descriptor');
    cleanup.add(() => socket.destroy());
    let heard = '';
    let failure: Error | null = null;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      heard += chunk;
    });
    socket.on('error', (error: Error) => {
      failure = error;
    });
    const state = (): string => `got ${JSON.stringify(heard)} / ${JSON.stringify(peer.received)}, socket error: ${String(failure)}`;
    socket.write('still here\n');
    await waitUntil(() => peer.received === 'still here\n', () => `the peer to hear the wrapped socket (${state()})`);
    peer.socket.write('and you\n');
    await waitUntil(() => heard === 'and you\n', () => `the wrapped socket to hear the peer (${state()})`);

    const inode = socketInodeOf((socket as unknown as { _handle: { fd: number } })._handle.fd);
    expect(inode, 'the wrapped socket still has its descriptor').to.be.a('string');
    socket.destroy();
    await peer.closedWithin();
    expect(inodeOpen(inode ?? ''), 'the descriptor is closed with its socket').to.equal(false);
    await within(listener.close(), 'close()');
    expect(book(listener.stats())).to.deep.equal({ accepted: 1, closed: 1, active: 0, leaked: 0 });
    await waitForFdCount(baseline);
  });
});

describe('slot values outside the protocol: the acceptor closes the descriptor it accepted, never the number in the slot', () => {
  // No path through the public API writes such a value: the listener writes only the states
  // of the protocol (-1, -2, -3). Any JS holding the addon can, though, so the acceptor is
  // driven here directly, with a real socket and a real client.
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let binding: NativeBinding;

  before(function () {
    const loaded = loadNativeBinding().binding;
    if (loaded === null) this.skip();
    binding = loaded;
  });

  /** An acceptor whose batch callback writes `garbage(fd)` into every slot; reports what it saw. */
  async function acceptorWriting(garbage: (fd: number) => number): Promise<{ port: number; accepted: Array<{ fd: number; inode: string | undefined }> }> {
    const opened = binding.openListenSocket(4, '127.0.0.1', 0, 16);
    if ('errno' in opened) throw new Error(`openListenSocket: errno ${opened.errno}`);
    const accepted: Array<{ fd: number; inode: string | undefined }> = [];
    const acceptor = new binding.Acceptor(
      opened.fd,
      (fds, count) => {
        for (let i = 0; i < count; i++) {
          const fd = fds[i] as number;
          accepted.push({ fd, inode: socketInodeOf(fd) });
          fds[i] = garbage(fd);
        }
      },
      () => undefined,
      {},
    );
    cleanup.add(() => acceptor.close());
    acceptor.start();
    const port = acceptor.address()?.port;
    if (port === undefined) throw new Error('the acceptor has no address');
    return { port, accepted };
  }

  it('a slot naming another open descriptor: that descriptor stays open, the accepted one is closed', async () => {
    const victim = fs.openSync('/dev/null', 'r');
    // Closed only if it is still the one opened here: a broken acceptor may have closed it.
    cleanup.add(() => linkOf(victim) === '/dev/null' && fs.closeSync(victim));
    const { port, accepted } = await acceptorWriting(() => victim);
    const peer = await tcpPeer(port);
    cleanup.add(() => peer.destroy());
    await waitUntil(() => accepted.length === 1, 'the connection to be accepted');
    // The acceptor settles the batch before it returns to the loop, so this is already decided.
    expect(linkOf(victim), 'the descriptor the slot named').to.equal('/dev/null');
    await peer.closedWithin();
    expect(inodeOpen(accepted[0]?.inode ?? ''), 'the accepted descriptor is still open').to.equal(false);
  });

  for (const value of [-7, -1000, 2 ** 31 - 1]) {
    it(`a slot left at ${value}: the accepted descriptor is closed, not leaked`, async () => {
      const { port, accepted } = await acceptorWriting(() => value);
      const peer = await tcpPeer(port);
      cleanup.add(() => peer.destroy());
      await waitUntil(() => accepted.length === 1, 'the connection to be accepted');
      await peer.closedWithin();
      expect(inodeOpen(accepted[0]?.inode ?? ''), 'the accepted descriptor is still open').to.equal(false);
    });
  }
});
