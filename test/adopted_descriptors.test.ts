// Listening descriptors the listener must refuse to adopt, on both backends, each in a child
// process (test/fixtures/adoption_child.ts): one this thread's loop already polls (a crash
// would kill the child, not this runner), and a Unix-domain socket (a rejected listener that
// went on accepting would keep the child alive). listen() rejects with a coded error, the
// descriptor stays with whoever held it, and the process exits by itself.
import os from 'node:os';
import { expect } from 'chai';
import { AdoptionChild, INHERITED_FD } from './support/child_listener.js';
import { Cleanup, closeServer, connect, handleFd, listeningServer, unixClient, unixServer } from './support/sockets.js';

const backends = ['native', 'js'] as const;

describe('adopting a descriptor this thread already polls: listen() rejects with EEXIST and the descriptor stays with its owner', () => {
  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      it("a net.Server's descriptor (server._handle.fd) in the same process: rejected, the server keeps serving, no crash", async () => {
        const child = AdoptionChild.start({ backend, listeners: 1 });
        cleanup.add(() => child.stop());
        const lent = await child.waitFor('lent');
        const failed = await child.waitFor('listenFailed');
        expect(failed.error.code, failed.error.message).to.equal('EEXIST');
        expect(failed.error.errno).to.equal(os.constants.errno.EEXIST);
        expect(failed.error.syscall).to.be.a('string').and.not.equal('');

        const served = await connect(lent.port);
        cleanup.add(() => served.destroy());
        expect(await served.line(), 'the net.Server still owns its descriptor').to.equal('server');
        expect(await child.exitsByItself()).to.deep.equal({ code: 0, signal: null });
        expect(child.all('done')).to.have.length(1);
      });

      it('one descriptor adopted by two listeners: the second rejects, the first keeps serving on it', async () => {
        const { server, port } = await listeningServer('127.0.0.1');
        cleanup.add(() => closeServer(server));
        const child = AdoptionChild.start(
          { backend, fd: INHERITED_FD, listeners: 2 },
          { inherit: { fd: handleFd(server), childFd: INHERITED_FD } },
        );
        cleanup.add(() => child.stop());
        await closeServer(server);

        expect((await child.waitFor('listening')).index).to.equal(0);
        const failed = await child.waitFor('listenFailed');
        expect({ index: failed.index, code: failed.error.code, errno: failed.error.errno }, failed.error.message).to.deep.equal({
          index: 1,
          code: 'EEXIST',
          errno: os.constants.errno.EEXIST,
        });

        const served = await connect(port);
        cleanup.add(() => served.destroy());
        expect(await served.line()).to.equal('listener 0');
        expect(await child.exitsByItself()).to.deep.equal({ code: 0, signal: null });
      });
    });
  }
});

describe('adopting a Unix-domain listening socket: refused before anything accepts on it', () => {
  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      it('listen() rejects with EAFNOSUPPORT naming the descriptor, a client on the path is never accepted, and the process exits', async () => {
        const { server, reachableAt } = await unixServer(cleanup);
        const child = AdoptionChild.start(
          { backend, fd: INHERITED_FD, listeners: 1 },
          { inherit: { fd: handleFd(server), childFd: INHERITED_FD } },
        );
        cleanup.add(() => child.stop());
        await closeServer(server);

        const failed = await child.waitFor('listenFailed');
        expect({ code: failed.error.code, errno: failed.error.errno, syscall: failed.error.syscall }, failed.error.message).to.deep.equal({
          code: 'EAFNOSUPPORT',
          errno: os.constants.errno.EAFNOSUPPORT,
          syscall: 'getsockname',
        });
        expect(failed.error.message).to.contain(`fd ${INHERITED_FD} is a Unix-domain (AF_UNIX) socket`);

        // The kernel completes the connection into the backlog; nobody in the child accepts it.
        const peer = await unixClient(reachableAt);
        cleanup.add(() => peer.destroy());
        const { stats } = await child.request({ cmd: 'stats' }, 'stats');
        expect(stats.map((book) => book.accepted)).to.deep.equal([0]);
        expect(peer.closed, 'the client was accepted and dropped').to.equal(false);

        // No accept loop left running: the child exits once its stdin closes.
        expect(await child.exitsByItself()).to.deep.equal({ code: 0, signal: null });
        expect(child.all('stats').at(-1)?.stats.map((book) => book.accepted)).to.deep.equal([0]);
      });
    });
  }
});
