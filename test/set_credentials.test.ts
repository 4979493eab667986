// listener.setCredentials: swapping the certificates a TLS listener serves while it runs.
// Real tls.connect clients check which certificate they were given.
import tls from 'node:tls';
import { expect } from 'chai';
import { createTestPki } from './support/pki.js';
import type { ReportedError } from './support/tls_harness.js';
import { BACKENDS, expectBalanced, greet, rawConnect, startListener, TlsClient, tlsConnect, useCleanup, waitUntil } from './support/tls_harness.js';

const pki = await createTestPki();

function failureOf(action: () => unknown): ReportedError {
  try {
    action();
  } catch (error) {
    return error as ReportedError;
  }
  throw new Error('expected it to throw');
}

for (const backend of BACKENDS) {
  describe(`setCredentials swaps the certificates for new connections only (${backend} backend)`, function () {
    const cleanup = useCleanup();

    it('serves the new certificate to connections accepted after the call; a handshake begun before it finishes with the old one', async function () {
      const running = await startListener(cleanup, { backend, credential: pki.server, alpn: ['http/1.1'] }, greet('hello\n'));
      // Accepted before the swap, its ClientHello sent only after it.
      const early = await rawConnect(cleanup, running.port);
      await waitUntil(() => running.listener.stats().accepted === 1, 'the first connection to be accepted');

      running.listener.setCredentials({ credential: pki.rsaServer });

      const late = tlsConnect(cleanup, running.port);
      await late.receive('hello\n');
      expect(late.serverCommonName()).to.equal('rsa.server.test');

      const earlyTls = new TlsClient(tls.connect({ socket: early.socket, rejectUnauthorized: false }));
      cleanup.add(() => earlyTls.socket.destroy());
      await earlyTls.receive('hello\n');
      expect(earlyTls.serverCommonName()).to.equal('server.test');
      expect(running.clientErrors).to.deep.equal([]);
      expectBalanced(running.listener);
    });

    it('replaces the SNI credential alone and keeps the other', async function () {
      const running = await startListener(cleanup, { backend, credential: pki.rsaServer, sniCredential: pki.sni }, greet('hi\n'));
      running.listener.setCredentials({ sniCredential: pki.server });
      const withSni = tlsConnect(cleanup, running.port, { servername: 'anything.test' });
      const withoutSni = tlsConnect(cleanup, running.port);
      await Promise.all([withSni.receive('hi\n'), withoutSni.receive('hi\n')]);
      expect(withSni.serverCommonName()).to.equal('server.test');
      expect(withoutSni.serverCommonName()).to.equal('rsa.server.test');
    });
  });
}

describe('setCredentials refuses a bad update with a coded error and keeps serving what it served', function () {
  const cleanup = useCleanup();

  it('ERR_INVALID_CREDENTIAL for a key that is not a key, ERR_INVALID_OPTION for a malformed update; nothing changes', async function () {
    const running = await startListener(cleanup, { credential: pki.server, sniCredential: pki.sni }, greet('ok\n'));
    const { listener } = running;
    const badKey = failureOf(() => listener.setCredentials({ credential: pki.rsaServer, sniCredential: { cert: pki.sni.cert, key: 'not a key' } }));
    expect(badKey.code, badKey.message).to.equal('ERR_INVALID_CREDENTIAL');
    expect(badKey.message).to.match(/^sniCredential: /);
    const mismatched = failureOf(() => listener.setCredentials({ credential: { cert: pki.server.cert, key: pki.rsaServer.key } }));
    expect(mismatched.code, mismatched.message).to.equal('ERR_INVALID_CREDENTIAL');
    for (const update of [{}, { certificate: pki.rsaServer }, null]) {
      const error = failureOf(() => listener.setCredentials(update as never));
      expect(error.code, `${JSON.stringify(update)}: ${error.message}`).to.equal('ERR_INVALID_OPTION');
    }
    // The valid half of the first update was not applied either.
    const withoutSni = tlsConnect(cleanup, running.port);
    const withSni = tlsConnect(cleanup, running.port, { servername: 'sni.test' });
    await Promise.all([withoutSni.receive('ok\n'), withSni.receive('ok\n')]);
    expect(withoutSni.serverCommonName()).to.equal('server.test');
    expect(withSni.serverCommonName()).to.equal('sni.test');
  });
});
