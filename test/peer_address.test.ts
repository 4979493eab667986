// The native acceptor reads the peer's address with accept4() itself and hands it over with
// the batch, so a TLS listener (which reads the peer at accept, for its failure reports) makes
// no getpeername() call per connection. Counted by a pass-through wrapper around the real
// handle's getpeername; the address reported must still be the client's.
import type net from 'node:net';
import { expect } from 'chai';
import { adoptDescriptor } from '../src/index.js';
import { createTestPki } from './support/pki.js';
import type { TestPki } from './support/pki.js';
import { rawConnect, startListener, useCleanup } from './support/tls_harness.js';

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
