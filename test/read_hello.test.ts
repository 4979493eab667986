// The ClientHello read in JS (src/tls/client_hello_reader.ts: the `js` backend, and the native
// backend with idleTimeout): the reader only learns the name and the ALPN list, and puts every
// byte back; what it cannot parse, or a hello over its 16 KiB cap, goes to OpenSSL unparsed.
// So a listener with `alpn` answers every hello as tls.createServer({ ALPNProtocols }) does,
// case for case with the native peek (support/same_answers.ts).
import { expect } from 'chai';
import { captureClientHello, expectBalanced, waitUntil } from './support/tls_harness.js';
import { paddedTo } from './support/hello_builder.js';
import { itAnswersAsTlsCreateServer, useComparison } from './support/same_answers.js';

const readers = [
  { label: 'the js backend', options: { backend: 'js' } },
  { label: 'the native backend with idleTimeout', options: { backend: 'native', idleTimeout: 60_000 } },
] as const;

for (const { label, options } of readers) {
  describe(`ClientHello read in JS (${label}): a listener with alpn answers every hello as tls.createServer({ ALPNProtocols })`, function () {
    const state = useComparison(options);
    itAnswersAsTlsCreateServer(state);

    // Cut short, then the client's FIN: no answer from either server, and the listener reports
    // the client's close, whether the reader still held the bytes or had handed them over.
    const truncations = [
      { name: 'half a hello', hello: async () => (await captureClientHello({ ALPNProtocols: ['h2'] })).subarray(0, 100) },
      { name: 'the first 30,000 bytes of a 40,000-byte hello (past the reader\'s cap)', hello: async () => paddedTo(state().parts, 40_000).subarray(0, 30_000) },
    ];
    for (const { name, hello } of truncations) {
      it(`${name}, then FIN: closed with no answer, as by tls.createServer, and reported as ERR_CLIENT_CLOSED`, async function () {
        const { answers, listener } = state();
        const got = await answers(await hello(), { end: true });
        expect(got).to.deep.equal({ listener: 'closed', reference: 'closed' });
        const { error } = await listener.nextClientError();
        expect(error.code, error.message).to.equal('ERR_CLIENT_CLOSED');
        await waitUntil(() => listener.listener.stats().active === 0, 'the connection to be released');
        expectBalanced(listener.listener);
      });
    }
  });
}
