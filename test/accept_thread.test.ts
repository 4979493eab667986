// The accept thread and the worker queues, driven through the addon directly (a Dispatcher and
// a WorkerQueue on this thread stand for the main thread and one worker): the dispatcher's
// books are copied under its lock and turned into JS objects after it, and a queue reads its
// batch's slots only while the batch's buffer is attached.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { loadNativeBinding } from '../src/native/load.js';
import { dispatchBindingOf } from '../src/workers/dispatch_binding.js';
import type { DispatchBinding } from '../src/workers/dispatch_binding.js';
import { repoRoot } from './support/paths.js';
import { Cleanup, tcpPeer, waitUntil, within } from './support/registry_support.js';

/** A listening socket on loopback from the addon. */
function listeningSocket(binding: DispatchBinding): number {
  const opened = binding.openListenSocket(4, '127.0.0.1', 0, 64);
  if ('errno' in opened) throw new Error(`openListenSocket: errno ${opened.errno}`);
  return opened.fd;
}

describe('the accept thread driven directly', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());
  let binding: DispatchBinding;

  before(function () {
    const loaded = dispatchBindingOf(loadNativeBinding().binding);
    if (loaded === null) this.skip();
    binding = loaded;
  });

  it('Dispatcher.stats() builds no JS object under its lock: JS run while building (a setter) may call stats() again', async () => {
    // A setter on Object.prototype runs whenever stats() sets that property on the object it
    // builds. Built under the dispatcher's mutex, the nested stats() would wait for the mutex
    // its own thread holds, for ever: so the check runs in a child, with a bounded wait.
    const script = `
      import { loadNativeBinding } from ${JSON.stringify(path.join(repoRoot, 'dist', 'src', 'native', 'load.js'))};
      const binding = loadNativeBinding().binding;
      const opened = binding.openListenSocket(4, '127.0.0.1', 0, 8);
      const dispatcher = new binding.Dispatcher(opened.fd, () => {}, {});
      let nested = null;
      Object.defineProperty(Object.prototype, 'stranded', {
        configurable: true,
        set(value) {
          delete Object.prototype.stranded;
          Object.defineProperty(this, 'stranded', { value, enumerable: true, writable: true, configurable: true });
          nested = dispatcher.stats();
        },
      });
      const outer = dispatcher.stats();
      dispatcher.close();
      console.log(JSON.stringify({ outer: outer.accepted, nested: nested === null ? null : nested.accepted }));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanup.add(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const code = await within(exited, 'stats() to return (a nested stats() under the lock never does)').catch((error: unknown) => {
      throw new Error(`${String(error)}; child said: ${output}`);
    });
    expect(code, output).to.equal(0);
    expect(JSON.parse(output.trim()), output).to.deep.equal({ outer: 0, nested: 0 });
  });

  it("a worker queue whose batch's buffer JS detached leaves its descriptors alone: a socket that took one keeps it", async () => {
    const dispatcher = new binding.Dispatcher(listeningSocket(binding), () => undefined, {});
    cleanup.add(() => dispatcher.close());
    const port = dispatcher.address()?.port ?? 0;
    const sockets: net.Socket[] = [];
    // The callback wraps the descriptor in a socket (whose handle now owns it) but never marks
    // its slot, then transfers the buffer away: the queue cannot read the slots any more. Read
    // anyway, through a stale pointer, the slot would still show the descriptor, untouched.
    const queue = new binding.WorkerQueue(dispatcher.id, 0, (fds) => {
      const socket = new net.Socket({ fd: fds[0] as number, readable: true, writable: true });
      sockets.push(socket);
      const buffer = fds.buffer as ArrayBuffer;
      structuredClone(buffer, { transfer: [buffer] });
    });
    cleanup.add(() => queue.close());
    cleanup.add(() => {
      for (const socket of sockets) socket.destroy();
    });
    dispatcher.start();
    const peer = await tcpPeer(port);
    cleanup.add(() => peer.destroy());
    await waitUntil(() => sockets.length === 1, 'the worker queue to hand the connection over');
    const [socket] = sockets;
    if (socket === undefined) throw new Error('no socket');
    let failure: Error | null = null;
    socket.on('error', (error: Error) => {
      failure = error;
    });
    socket.write('still mine\n');
    await waitUntil(() => peer.received === 'still mine\n' || failure !== null, () => `the peer to hear the socket (socket error: ${String(failure)})`);
    expect(failure, 'the socket lost its descriptor').to.equal(null);
    expect(peer.received).to.equal('still mine\n');
  });
});
