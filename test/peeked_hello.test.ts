// The ClientHello peeked in C++ (native/hello_peek.cc): a listener with `alpn` answers every
// hello as tls.createServer({ ALPNProtocols }) does, because OpenSSL reads the client's own bytes.
// Each class of case tlsfuzzer's ClientHello, extension, SNI, ALPN, fragmentation and large-hello
// scripts found different before is in the shared suite (support/same_answers.ts), hand-built
// from a real client's hello, and sent to both servers side by side; what only the peek does
// (a hello larger than the kernel's queue; a reset read with the socket's error) is here.
import { expect } from 'chai';
import { captureClientHello, expectBalanced, rawConnect, waitUntil } from './support/tls_harness.js';
import { paddedTo, serverHelloProtocol, splitHello, withMoreCiphers } from './support/hello_builder.js';
import { itAnswersAsTlsCreateServer, useComparison } from './support/same_answers.js';

describe('ClientHello peeked natively: a listener with alpn answers every hello as tls.createServer({ ALPNProtocols })', function () {
  const state = useComparison({ backend: 'native' });
  itAnswersAsTlsCreateServer(state);

  it('a valid hello larger than the kernel\'s receive queue (128 KiB, OpenSSL\'s largest is 128.3) gets its ALPN protocol, as from tls.createServer', async function () {
    const { cleanup, listener, referencePort } = state();
    // The queue stops near 125 KiB until its reader consumes: the peeker reads the rest off
    // the socket and hands it over (native/hello_take.h); before, OpenSSL got it with no ALPN.
    const hello = paddedTo(withMoreCiphers(splitHello(await captureClientHello({ maxVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'] })), 65_000), 130_000);
    expect(hello.length).to.equal(130_000);
    const got = { listener: await serverHelloProtocol(cleanup, listener.port, hello), reference: await serverHelloProtocol(cleanup, referencePort, hello) };
    expect(got).to.deep.equal({ listener: 'http/1.1', reference: 'http/1.1' });
    await waitUntil(() => listener.listener.stats().active === 0, 'the connection to be released');
    expectBalanced(listener.listener);
  });

  it('a reset that comes with the hello\'s first bytes, after the accept: the connection fails with ECONNRESET, not ERR_CLIENT_CLOSED', async function () {
    const { cleanup, listener } = state();
    const hello = await captureClientHello({ ALPNProtocols: ['http/1.1'] });
    const raw = await rawConnect(cleanup, listener.port);
    await waitUntil(() => listener.listener.stats().accepted === 1, 'the accept');
    // Both reach the socket before the loop polls again: one wake brings new bytes and the error.
    raw.socket.write(hello.subarray(0, 40));
    raw.socket.resetAndDestroy();
    const { error } = await listener.nextClientError();
    expect(error.code, error.message).to.equal('ECONNRESET');
    await waitUntil(() => listener.listener.stats().active === 0, 'the connection to be released');
    expectBalanced(listener.listener);
  });
});
