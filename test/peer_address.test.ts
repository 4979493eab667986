// The native acceptor reads the peer's address with accept4() itself and hands it over with
// the batch, so a TLS listener (which reads the peer at accept, for its failure reports) makes
// no getpeername() call per connection. Counted by a pass-through wrapper around the real
// handle's getpeername; the address reported must still be the client's.
import net from 'node:net';
import { expect } from 'chai';
import { adoptDescriptor, TLSListener } from '../src/index.js';
import type { SetupFailureInfo } from '../src/index.js';
import { peerAddressAt, PEER_WORDS } from '../src/accept/peer_address.js';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import { rawConnect, startListener, useCleanup } from './support/tls_harness.js';
import { canBind, waitUntil, within } from './support/sockets.js';

interface PeerLookups {
  getpeername: number;
}

/** The real adopter, with the new socket's handle counting its getpeername() calls. */
function countingAdopter(lookups: PeerLookups): (fd: number) => net.Socket {
  return (fd) => {
    const socket = adoptDescriptor(fd);
    const handle = (socket as unknown as { _handle: { getpeername(out: object): number } })._handle;
    const real = handle.getpeername.bind(handle);
    handle.getpeername = (out) => {
      lookups.getpeername++;
      return real(out);
    };
    return socket;
  };
}

describe('peer address from accept: the native acceptor hands it over, no getpeername() per connection', () => {
  const cleanup = useCleanup();
  let pki: TestPki;
  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
  });

  it('native backend: a failed TLS setup names the client without a getpeername() call', async () => {
    const lookups: PeerLookups = { getpeername: 0 };
    const running = await startListener(
      cleanup,
      { backend: 'native', credential: { cert: pki.server.cert, key: pki.server.key } },
      () => undefined,
      { adoptDescriptor: countingAdopter(lookups) },
    );
    const client = await rawConnect(cleanup, running.port);
    client.socket.write('\x00\x01 not a ClientHello');
    const { info } = await running.nextClientError();
    expect({ remoteAddress: info.remoteAddress, remotePort: info.remotePort }).to.deep.equal({
      remoteAddress: '127.0.0.1',
      remotePort: client.localPort,
    });
    expect(lookups.getpeername, 'getpeername() calls').to.equal(0);
  });
});

describe('peer address from accept: every kind of address the acceptor writes as numbers reads back as Node writes it', () => {
  const cleanup = useCleanup();
  let pki: TestPki;
  before(async function () {
    this.timeout(60_000);
    pki = await createTestPki();
  });

  /** A listener on `host` whose failed setups are collected, and a client that fails one from `from`. */
  async function failedSetupFrom(host: string, connectTo: string, from?: string): Promise<{ info: SetupFailureInfo; clientPort: number | undefined }> {
    const listener = new TLSListener({ backend: 'native', host, port: 0, credential: { cert: pki.server.cert, key: pki.server.key } }, () => undefined);
    cleanup.add(() => listener.close());
    const failures: SetupFailureInfo[] = [];
    listener.on('tlsClientError', (_error: Error, info: SetupFailureInfo) => failures.push(info));
    const { port } = await listener.listen();
    const client = net.connect({ host: connectTo, port, ...(from !== undefined ? { localAddress: from } : {}) });
    cleanup.add(() => client.destroy());
    await within(new Promise((resolve, reject) => client.once('connect', resolve).once('error', reject)), 'the client to connect');
    // Read now: once the listener has closed the connection, the client's socket forgets it.
    const clientPort = client.localPort;
    client.write('\x00\x01 not a ClientHello');
    await waitUntil(() => failures.length > 0, 'the failed setup');
    return { info: failures[0] as SetupFailureInfo, clientPort };
  }

  it('IPv4 (a client bound to 127.1.2.3)', async () => {
    const { info, clientPort } = await failedSetupFrom('127.0.0.1', '127.0.0.1', '127.1.2.3');
    expect({ remoteAddress: info.remoteAddress, remotePort: info.remotePort }).to.deep.equal({ remoteAddress: '127.1.2.3', remotePort: clientPort });
  });

  it('IPv4-mapped IPv6 (an IPv4 client of a dual-stack listener) reads ::ffff:a.b.c.d', async function () {
    if (!(await canBind(0, '::'))) this.skip();
    const { info, clientPort } = await failedSetupFrom('::', '127.0.0.1');
    expect({ remoteAddress: info.remoteAddress, remotePort: info.remotePort }).to.deep.equal({ remoteAddress: '::ffff:127.0.0.1', remotePort: clientPort });
  });

  it('IPv6 (::1) keeps the addon\'s text', async function () {
    if (!(await canBind(0, '::1'))) this.skip();
    const { info, clientPort } = await failedSetupFrom('::1', '::1');
    expect({ remoteAddress: info.remoteAddress, remotePort: info.remotePort }).to.deep.equal({ remoteAddress: '::1', remotePort: clientPort });
  });

  it('every IPv4 address and port, the sign bit included, reads as its dotted quad', () => {
    // The words as the addon writes them (native/peer_words.h): kind 1, port, host-order bits.
    const samples = [0, 1, 0x7f000001, 0x7fffffff, 0x80000000, 0xc0a80001, 0xfffffffe, 0xffffffff];
    for (let i = 0; i < 2000; i++) samples.push(Math.floor(Math.random() * 2 ** 32));
    const words = new Int32Array(PEER_WORDS);
    for (const value of samples) {
      const port = value % 65536;
      words.set([1, port, value | 0]);
      const bytes = Buffer.alloc(4);
      bytes.writeUInt32BE(value);
      expect(peerAddressAt({ words, ipv6Texts: undefined }, 0)).to.deep.equal({ address: [...bytes].join('.'), family: 'IPv4', port });
    }
    words.set([0, 0, 0]);
    expect(peerAddressAt({ words, ipv6Texts: undefined }, 0), 'not IP').to.equal(null);
    words.set([3, 443, 0]);
    expect(peerAddressAt({ words, ipv6Texts: undefined }, 0), 'IPv6 without its text').to.equal(null);
  });
});
