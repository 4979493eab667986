// Who closes an accepted descriptor is said by the batch slot protocol (native/acceptor.h),
// never guessed from a descriptor number. A listener closed from inside a batch callback (by
// its handler, or by a diagnostics_channel `accept` subscriber) destroys the socket it just
// wrapped, whose descriptor libuv closes at once; a descriptor the process opens right after
// gets the same number, and must stay open once the batch returns.
import diagnosticsChannel from 'node:diagnostics_channel';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import { expect } from 'chai';
import { TCPListener } from '../src/index.js';
import { nativeAvailable } from '../src/index.js';
import { Cleanup, tcpPeer, waitUntil, within } from './support/registry_support.js';
import { ModeHarness } from './support/listener_modes.js';

const TRIALS = 25;

/** What descriptor `fd` of this process points to, or undefined when it is closed. */
function linkOf(fd: number): string | undefined {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** A file of this test's own, so its descriptor is recognisable in /proc/self/fd. */
function scratchFile(cleanup: Cleanup): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ntl-ownership-'));
  cleanup.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'kept-open');
  fs.writeFileSync(file, 'mine\n');
  return file;
}

/**
 * Opens `file` until the descriptor number `wanted` comes back (the numbers below it that were
 * free are taken first, as any open() in the process would): the number just freed is reused.
 * Returns every descriptor opened; the last is `wanted` unless that number never came free.
 */
function openUntil(file: string, wanted: number): number[] {
  const opened: number[] = [];
  for (let i = 0; i < 4096; i++) {
    const fd = fs.openSync(file, 'r');
    opened.push(fd);
    if (fd >= wanted) break;
  }
  return opened;
}

/** The descriptor under a socket's libuv handle, while it has one. */
function descriptorOf(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the socket has no descriptor');
  return fd;
}

/**
 * One trial: inside the batch callback (in the handler, or in an `accept` subscriber) the
 * listener is closed, which destroys the socket just wrapped, and the file is opened until it
 * gets that socket's descriptor number. Returns that number and what it points to once the
 * batch has returned.
 */
async function trial(file: string, hook: 'handler' | 'accept-subscriber', cleanup: Cleanup): Promise<{ fd: number; link: string | undefined }> {
  const opened: number[] = [];
  cleanup.add(() => {
    for (const fd of opened) if (linkOf(fd) === file) fs.closeSync(fd);
  });
  let wanted = -1;
  const closeAndOpen = (listener: TCPListener, fd: number): void => {
    wanted = fd;
    void listener.close();
    opened.push(...openUntil(file, fd));
  };
  let listener: TCPListener | null = null;
  const handler = (socket: net.Socket): void => {
    if (hook === 'handler' && listener !== null) closeAndOpen(listener, descriptorOf(socket));
    socket.destroy();
  };
  const served = new TCPListener({ port: 0, host: '127.0.0.1', backend: 'native' }, handler);
  listener = served;
  const onAccept = (message: unknown): void => {
    const { listener: from, fd } = message as { listener: unknown; fd: number };
    if (from === served) closeAndOpen(served, fd);
  };
  if (hook === 'accept-subscriber') {
    diagnosticsChannel.subscribe('native-tls-listener:accept', onAccept);
    cleanup.add(() => diagnosticsChannel.unsubscribe('native-tls-listener:accept', onAccept));
  }
  cleanup.add(() => served.close());
  const { port } = await served.listen();
  const peer = await tcpPeer(port);
  cleanup.add(() => peer.destroy());
  await waitUntil(() => opened.length > 0, 'the batch callback to close the listener and open the file');
  await within(served.close(), 'close()');
  await peer.closedWithin();
  expect(opened[opened.length - 1], 'the file got the number of the descriptor just closed').to.equal(wanted);
  return { fd: wanted, link: linkOf(wanted) };
}

describe('a listener closed from inside a batch callback: the acceptor closes nothing it no longer owns', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  before(function () {
    if (!nativeAvailable()) this.skip();
  });

  for (const hook of ['handler', 'accept-subscriber'] as const) {
    const who = hook === 'handler' ? 'a plain-TCP handler' : 'a diagnostics_channel accept subscriber';
    it(`${who} calls close() and opens a file: the file is still open after the batch (${TRIALS} trials)`, async () => {
      const file = scratchFile(cleanup);
      const closedBehindOurBack: number[] = [];
      const each = new Cleanup();
      cleanup.add(() => each.run());
      for (let i = 0; i < TRIALS; i++) {
        const { fd, link } = await trial(file, hook, each);
        if (link !== file) closedBehindOurBack.push(fd);
        await each.run();
      }
      expect(closedBehindOurBack, 'descriptors of the file that were closed behind the process').to.deep.equal([]);
    });
  }
});

describe('a worker listener closed from inside its batch callback: the queue closes nothing it no longer owns', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  before(function () {
    if (!nativeAvailable()) this.skip();
  });

  it('a diagnostics_channel accept subscriber in the worker calls close() and opens a file: it stays open', async () => {
    const file = scratchFile(cleanup);
    const harness = new ModeHarness('workers');
    cleanup.add(() => harness.close());
    // Workers take a copy of the environment when they start.
    process.env.NTL_OWNERSHIP_FILE = file;
    cleanup.add(() => {
      delete process.env.NTL_OWNERSHIP_FILE;
    });
    // Self-contained (it runs in the worker): the subscriber closes the worker's listener in the
    // batch callback and opens the file; the handler reports, after the batch, what it points to.
    const listener = harness.tcp({ port: 0, host: '127.0.0.1' }, (scope) => {
      const getBuiltin = (process as unknown as { getBuiltinModule(name: string): unknown }).getBuiltinModule;
      const channels = getBuiltin('node:diagnostics_channel') as typeof import('node:diagnostics_channel');
      const files = getBuiltin('node:fs') as typeof import('node:fs');
      const target = process.env.NTL_OWNERSHIP_FILE ?? '';
      channels.subscribe('native-tls-listener:accept', (message) => {
        const { listener, fd: wanted } = message as { listener: { close(): Promise<void> }; fd: number };
        void listener.close();
        // Opened until it gets the number the socket just closed had (see openUntil).
        let fd = -1;
        for (let i = 0; i < 4096 && fd < wanted; i++) fd = files.openSync(target, 'r');
        setImmediate(() => {
          let link: string | null = null;
          try {
            link = files.readlinkSync(`/proc/self/fd/${fd}`);
          } catch {
            // closed behind the worker's back
          }
          scope.tell({ fd, wanted, link });
        });
      });
      return (socket) => {
        socket.destroy();
      };
    });
    cleanup.add(() => listener.close());
    const { port } = await listener.listen();
    const peer = await tcpPeer(port);
    cleanup.add(() => peer.destroy());
    const reports = (): Array<{ fd: number; link: string | null }> =>
      harness.told((message): message is { fd: number; link: string | null } => typeof (message as { fd?: unknown }).fd === 'number');
    await waitUntil(() => reports().length === 1, 'the worker to report its file descriptor');
    const [report] = reports();
    expect(report?.fd, 'the file got the number of the descriptor just closed').to.equal((report as { wanted?: number } | undefined)?.wanted);
    expect(report?.link, `descriptor ${report?.fd} of the worker's file`).to.equal(file);
  });
});
