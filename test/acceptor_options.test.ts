// Numbers on their way into the addon: the acceptor's options are refused at construction
// with ERR_INVALID_OPTION through the public API, and the addon refuses every out-of-range
// number on its own (called directly, in a child process, so an abort shows as the child's
// death at a named call rather than the end of this runner).
import net from 'node:net';
import { expect } from 'chai';
import { TCPListener } from '../src/index.js';
import type { CodedError, ListenerDependencies } from '../src/index.js';
import { BindingCallsChild } from './support/child_listener.js';
import { Cleanup, connect } from './support/sockets.js';
import type { BindingCall, BindingCallEvent, BindingTarget } from './fixtures/binding_calls_child.js';

type AcceptorOptions = NonNullable<ListenerDependencies['acceptorOptions']>;

function constructionError(acceptorOptions: Record<string, unknown>): CodedError | null {
  try {
    const listener = new TCPListener({ port: 0, host: '127.0.0.1', backend: 'native' }, () => undefined, {
      acceptorOptions: acceptorOptions as AcceptorOptions,
    });
    void listener.close();
    return null;
  } catch (error) {
    return error as CodedError;
  }
}

describe('acceptor options are refused at construction with ERR_INVALID_OPTION, before they reach the addon', () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  const refused: Array<[string, Record<string, unknown>]> = [
    ['batchLimit NaN', { batchLimit: Number.NaN }],
    ['batchLimit Infinity', { batchLimit: Infinity }],
    ['batchLimit -1', { batchLimit: -1 }],
    ['batchLimit 0', { batchLimit: 0 }],
    ['batchLimit 1.5', { batchLimit: 1.5 }],
    ['batchLimit 4097', { batchLimit: 4097 }],
    ['batchLimit 1e15', { batchLimit: 1e15 }],
    ['batchLimit 2**31', { batchLimit: 2 ** 31 }],
    ["batchLimit '8' (a string)", { batchLimit: '8' }],
    ['batchLimit null', { batchLimit: null }],
    ['addressTableSize 0', { addressTableSize: 0 }],
    ['addressTableSize 65537 (over the documented cap)', { addressTableSize: 65_537 }],
    ['addressTableSize 1.5', { addressTableSize: 1.5 }],
    ['pauseMinMs 0', { pauseMinMs: 0 }],
    ['pauseMinMs 60001', { pauseMinMs: 60_001 }],
    ['pauseMinMs NaN', { pauseMinMs: Number.NaN }],
    ['pauseMaxMs Infinity', { pauseMaxMs: Infinity }],
    ['pauseMaxMs 3600001', { pauseMaxMs: 3_600_001 }],
    ['pauseMaxMs below pauseMinMs', { pauseMinMs: 100, pauseMaxMs: 99 }],
    ['pauseMaxMs below the default pauseMinMs (5)', { pauseMaxMs: 4 }],
  ];
  for (const [name, options] of refused) {
    it(`refuses ${name}`, () => {
      const error = constructionError(options);
      expect(error, 'the constructor threw').to.not.equal(null);
      expect(error?.code, error?.message).to.equal('ERR_INVALID_OPTION');
    });
  }

  it('accepts each range end, and a listener with batchLimit 1 serves its clients', async () => {
    for (const options of [
      { batchLimit: 1, pauseMinMs: 1, pauseMaxMs: 1 },
      { batchLimit: 4096, pauseMinMs: 60_000, pauseMaxMs: 3_600_000 },
    ]) {
      expect(constructionError(options), JSON.stringify(options)).to.equal(null);
    }
    const serve = (socket: net.Socket): void => {
      socket.end('hi\n');
    };
    const listener = new TCPListener({ port: 0, host: '127.0.0.1', backend: 'native' }, serve, { acceptorOptions: { batchLimit: 1 } });
    cleanup.add(() => listener.close());
    const { port } = await listener.listen();
    for (let i = 0; i < 3; i++) {
      const client = await connect(port);
      cleanup.add(() => client.destroy());
      expect(await client.line()).to.equal('hi');
    }
  });
});

describe('the addon refuses out-of-range numbers itself: a RangeError with code ERR_INVALID_OPTION, never a cast', () => {
  const refusedValues = ['NaN', 'Infinity', '-Infinity', '-1', '1e15', String(2 ** 31), '1.5'];
  const targets: Array<{ target: BindingTarget; accepted: string[]; refused: string[] }> = [
    // A listenFd in range but not open throws a libuv error (EBADF), which is not the subject.
    { target: 'Acceptor listenFd', accepted: [String(2 ** 31 - 1)], refused: refusedValues },
    { target: 'Acceptor options.batchLimit', accepted: ['1', '4096'], refused: [...refusedValues, '0', '4097'] },
    { target: 'Acceptor options.pauseMinMs', accepted: ['1', '60000'], refused: [...refusedValues, '0', '60001'] },
    { target: 'Acceptor options.pauseMaxMs', accepted: ['5', '3600000'], refused: [...refusedValues, '4', '3600001'] },
    { target: 'Acceptor options.maxConnections', accepted: ['0', '1', String(2 ** 31 - 1)], refused: refusedValues },
    { target: 'Acceptor options.maxPendingHandshakes', accepted: ['0', '1', String(2 ** 31 - 1)], refused: refusedValues },
    { target: 'Acceptor options.maxConnectionsPerAddress', accepted: ['0', '1', String(2 ** 31 - 1)], refused: refusedValues },
    { target: 'Acceptor options.maxQueuedConnections', accepted: ['0', '1', String(2 ** 31 - 1)], refused: refusedValues },
    { target: 'Acceptor options.perAddressIPv6Prefix', accepted: ['1', '64', '128'], refused: [...refusedValues, '0', '129'] },
    { target: 'Acceptor options.addressTableSize', accepted: ['1', '65536'], refused: [...refusedValues, '0', '65537'] },
    { target: 'Dispatcher options.addressTableSize', accepted: ['1', '65536'], refused: [...refusedValues, '0', '65537'] },
    { target: 'Acceptor releaseAddress slot', accepted: ['0', String(2 ** 31 - 1)], refused: refusedValues },
    { target: 'Dispatcher options.perAddressIPv6Prefix', accepted: ['1', '128'], refused: [...refusedValues, '0', '129'] },
    { target: 'addressKey ipv6Prefix', accepted: ['1', '128'], refused: [...refusedValues, '0', '129'] },
    { target: 'Dispatcher options.maxQueuedConnections', accepted: ['0', '1', String(2 ** 31 - 1)], refused: refusedValues },
    { target: 'setDeferAccept seconds', accepted: ['0', '5'], refused: refusedValues },
    { target: 'openListenSocket family', accepted: ['4', '6'], refused: [...refusedValues, '0', '5', '10'] },
    { target: 'openListenSocket port', accepted: ['0'], refused: [...refusedValues, '65536'] },
    { target: 'openListenSocket backlog', accepted: ['0', String(2 ** 31 - 1)], refused: refusedValues },
    { target: 'prepareAdoptedSocket fd', accepted: [String(2 ** 31 - 1)], refused: refusedValues },
    { target: 'closeDescriptor fd', accepted: [String(2 ** 31 - 1)], refused: refusedValues },
  ];

  // One child per argument, so a call that aborts takes down only the calls after it in that
  // argument's list, and each of those says which call it died in.
  for (const { target, accepted, refused } of targets) {
    describe(target, () => {
      const calls: BindingCall[] = [...accepted, ...refused].map((value) => ({ target, value }));
      let child: BindingCallsChild;

      before(async () => {
        child = BindingCallsChild.start(calls);
        await child.waitFor('done', () => true, { timeoutMs: 15_000 }).catch(() => undefined);
        await child.stop();
      });

      /** How the call with `value` ended, or why it never did. */
      function outcomeOf(value: string): Extract<BindingCallEvent, { event: 'returned' | 'threw' }> {
        const index = calls.findIndex((call) => call.value === value);
        const found = child.events.find(
          (event): event is Extract<BindingCallEvent, { event: 'returned' | 'threw' }> =>
            (event.event === 'returned' || event.event === 'threw') && event.index === index,
        );
        if (found) return found;
        const last = child.all('calling').at(-1);
        const dying = last !== undefined ? calls[last.index] : undefined;
        throw new Error(
          `no outcome for ${target} = ${value}: the child ended (code ${child.exitCode}, signal ${child.exitSignal}) ` +
            `during ${dying ? `${dying.target} = ${dying.value}` : 'start-up'}\n${child.transcript()}`,
        );
      }

      for (const value of accepted) {
        it(`takes ${value}`, () => {
          const outcome = outcomeOf(value);
          if (outcome.event === 'threw') expect(outcome.code, outcome.message).to.not.equal('ERR_INVALID_OPTION');
        });
      }
      for (const value of refused) {
        it(`refuses ${value}`, () => {
          const outcome = outcomeOf(value);
          expect(outcome.event, `${target} = ${value} was taken`).to.equal('threw');
          if (outcome.event !== 'threw') return;
          expect({ name: outcome.name, code: outcome.code }, outcome.message).to.deep.equal({
            name: 'RangeError',
            code: 'ERR_INVALID_OPTION',
          });
        });
      }
      it('made every call and exited normally', () => {
        expect({ code: child.exitCode, signal: child.exitSignal }, child.transcript()).to.deep.equal({ code: 0, signal: null });
      });
    });
  }
});
