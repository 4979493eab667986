// The IPv6 wildcard is dual-stack, as the original promises, on every host: where
// net.ipv6.bindv6only=1 (some distributions, the BSDs' default) a socket left at the system
// default would take IPv6 clients only. The sysctl is per network namespace, so the listener
// runs in a namespace of its own (`unshare -n`, root) with the sysctl set, and its clients
// connect from inside that namespace (the child's connectTo command).
import { spawnSync } from 'node:child_process';
import { expect } from 'chai';
import { ChildListener } from './support/child_listener.js';
import { Cleanup } from './support/sockets.js';

const backends = ['native', 'js'] as const;

/** Runs its arguments in a fresh network namespace: loopback up, bindv6only=1 and checked. */
const IN_BINDV6ONLY_NAMESPACE = [
  'unshare',
  '--net',
  'sh',
  '-c',
  'ip link set lo up && sysctl -qw net.ipv6.bindv6only=1 && [ "$(cat /proc/sys/net/ipv6/bindv6only)" = 1 ] && exec "$@"',
  'sh',
];

/** Why such a namespace cannot be made here, or null when it can. */
function namespaceUnavailable(): string | null {
  const probe = spawnSync('unshare', [...IN_BINDV6ONLY_NAMESPACE.slice(1), 'true'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (probe.error) return `cannot run unshare: ${probe.error.message}`;
  if (probe.status !== 0) return `unshare -n with bindv6only=1 failed (needs root): ${probe.stderr.trim() || `status ${probe.status}`}`;
  return null;
}

describe('the IPv6 wildcard is dual-stack even where net.ipv6.bindv6only=1', () => {
  let unavailable: string | null = null;
  before(() => {
    unavailable = namespaceUnavailable();
    if (unavailable !== null) console.log(`    skipping: ${unavailable}`);
  });

  for (const backend of backends) {
    describe(`${backend} backend`, () => {
      const cleanup = new Cleanup();
      afterEach(() => cleanup.run());

      for (const host of ['::', undefined]) {
        it(`listening on ${host ?? 'the wildcard (no host)'}, serves an IPv4 client (127.0.0.1) and an IPv6 client (::1)`, async function () {
          if (unavailable !== null) this.skip();
          const child = ChildListener.start({ backend, host, mode: 'serve' }, { wrapper: IN_BINDV6ONLY_NAMESPACE });
          cleanup.add(() => child.stop());
          const listening = await child.waitFor('listening');
          expect({ address: listening.address, family: listening.family }).to.deep.equal({ address: '::', family: 'IPv6' });

          const ipv4 = await child.request({ cmd: 'connectTo', host: '127.0.0.1', port: listening.port }, 'clientResult');
          const ipv6 = await child.request({ cmd: 'connectTo', host: '::1', port: listening.port }, 'clientResult');
          expect([ipv4, ipv6].map(({ host: from, line, error }) => ({ from, line, error })), child.transcript()).to.deep.equal([
            { from: '127.0.0.1', line: 'hello 1', error: null },
            { from: '::1', line: 'hello 2', error: null },
          ]);
          // The IPv4 client reached the IPv6 socket as an IPv4-mapped address.
          expect(child.all('connection').map((event) => event.remoteAddress)).to.deep.equal(['::ffff:127.0.0.1', '::1']);
          expect(child.all('error')).to.deep.equal([]);
        });
      }
    });
  }
});
