// An option key no call knows is an error, not silently ignored: a misspelt `sniCredential`
// would otherwise serve every client the primary credential. The error names the key and,
// when one is close, the option that was probably meant.
import { expect } from 'chai';
import { createListener, createLocalTCPListener } from '../src/index.js';
import type { CloseOptions, ListenerOptions, TCPListenerOptions } from '../src/index.js';
import { createTestPki } from './support/pki.js';
import { Cleanup, connect } from './support/sockets.js';

const pki = await createTestPki();
const backends = ['native', 'js'] as const;

/** The error `action` throws (failing the test when it throws nothing). */
function thrownBy(action: () => unknown): Error & { code?: string; option?: string; suggestion?: string } {
  try {
    action();
  } catch (error) {
    return error as Error & { code?: string };
  }
  expect.fail('expected an error');
}

// Options as they arrive from JavaScript or from an `as` cast, past the type checks.
const tlsOptions = (extra: Record<string, unknown>): ListenerOptions => ({ port: 0, credential: pki.server, ...extra }) as ListenerOptions;
const tcpOptions = (extra: Record<string, unknown>): TCPListenerOptions => ({ port: 0, ...extra }) as TCPListenerOptions;

describe('unknown option keys', function () {
  const cleanup = new Cleanup();
  afterEach(async function () {
    await cleanup.run();
  });

  for (const backend of backends) {
    describe(`${backend} backend`, function () {
      it("createListener({ sniCredentials }) throws ERR_INVALID_OPTION: did you mean sniCredential?", function () {
        const error = thrownBy(() => createListener(tlsOptions({ backend, sniCredentials: pki.sni }), () => undefined));
        expect(error.code).to.equal('ERR_INVALID_OPTION');
        expect(error.message).to.contain("'sniCredentials'").and.contain('did you mean sniCredential?');
        expect(error.option).to.equal('sniCredentials');
        expect(error.suggestion).to.equal('sniCredential');
      });

      it('createListener names the closest option whatever its case (logTlsErrors: logTLSErrors)', function () {
        const error = thrownBy(() => createListener(tlsOptions({ backend, logTlsErrors: true }), () => undefined));
        expect(error.message).to.contain('did you mean logTLSErrors?');
      });

      it('createLocalTCPListener({ idleTimout }) throws ERR_INVALID_OPTION: did you mean idleTimeout?', function () {
        const error = thrownBy(() => createLocalTCPListener(tcpOptions({ backend, idleTimout: 1000 }), () => undefined));
        expect(error.code).to.equal('ERR_INVALID_OPTION');
        expect(error.message).to.contain("'idleTimout'").and.contain('did you mean idleTimeout?');
      });

      it('createLocalTCPListener rejects a TLS-only option (credential)', function () {
        const error = thrownBy(() => createLocalTCPListener(tcpOptions({ backend, credential: pki.server }), () => undefined));
        expect(error.code).to.equal('ERR_INVALID_OPTION');
        expect(error.message).to.contain("unknown option 'credential'");
      });

      it('close({ graceful }) throws ERR_INVALID_OPTION: did you mean gracefulTimeout? (a known name cut short)', async function () {
        const listener = createLocalTCPListener({ port: 0, backend }, () => undefined);
        cleanup.add(() => listener.close());
        await listener.listen();
        const error = thrownBy(() => listener.close({ graceful: 1 } as CloseOptions));
        expect(error.code).to.equal('ERR_INVALID_OPTION');
        expect(error.message).to.contain("'graceful'").and.contain('did you mean gracefulTimeout?');
        expect(error.suggestion).to.equal('gracefulTimeout');
      });

      for (const port of [1.5, -1, 65536, Number.NaN, true]) {
        it(`port ${String(port)} is refused by createListener() and createLocalTCPListener(), before listen()`, function () {
          for (const create of [() => createListener(tlsOptions({ backend, port }), () => undefined), () => createLocalTCPListener(tcpOptions({ backend, port }), () => undefined)]) {
            const error = thrownBy(create);
            expect(error.code).to.equal('ERR_INVALID_OPTION');
            expect(error.message).to.contain('port must be an integer 0..65535');
          }
        });
      }

      it('a key close to no option is named without a guess', function () {
        const error = thrownBy(() => createListener(tlsOptions({ backend, zzz: 1 }), () => undefined));
        expect(error.code).to.equal('ERR_INVALID_OPTION');
        expect(error.message).to.contain("unknown option 'zzz'").and.not.contain('did you mean');
        expect(error).to.not.have.property('suggestion');
      });

      it('close({ gracefullTimeout }) throws ERR_INVALID_OPTION: did you mean gracefulTimeout?, and the listener still closes', async function () {
        const listener = createLocalTCPListener({ port: 0, backend }, (socket) => {
          socket.end('served');
        });
        cleanup.add(() => listener.close());
        const { port } = await listener.listen();
        const error = thrownBy(() => listener.close({ gracefullTimeout: 100 } as CloseOptions));
        expect(error.code).to.equal('ERR_INVALID_OPTION');
        expect(error.message).to.contain("'gracefullTimeout'").and.contain('did you mean gracefulTimeout?');
        // Nothing was closed by the rejected call: the listener still serves, then closes.
        const client = await connect(port);
        cleanup.add(() => client.destroy());
        await client.whenClosed();
        expect(client.received).to.equal('served');
        await listener.close({ gracefulTimeout: 100 });
        expect(listener.address()).to.equal(null);
      });

      it('every documented option is accepted', async function () {
        const tls = createListener(
          {
            port: 0,
            host: '127.0.0.1',
            backlog: 16,
            backend,
            gracefulCloseTimeout: 100,
            idleTimeout: 10_000,
            credential: pki.server,
            sniCredential: pki.sni,
            alpn: ['x'],
            requestClientCert: false,
            handshakeTimeout: 1000,
            logTLSErrors: false,
            http: () => undefined,
            proxyProtocol: 'any',
            trustedProxies: ['127.0.0.1'],
            maxConnections: 100,
            maxPendingHandshakes: 10,
            maxConnectionsPerAddress: 10,
            deferAccept: 5,
          },
          () => undefined,
        );
        cleanup.add(() => tls.close({ gracefulTimeout: 0 }));
        const tcp = createLocalTCPListener(
          {
            port: 0,
            host: '127.0.0.1',
            backlog: 16,
            backend,
            gracefulCloseTimeout: 100,
            idleTimeout: 10_000,
            proxyProtocol: 'v1',
            trustedProxies: ['::1'],
            maxConnections: 100,
            maxConnectionsPerAddress: 10,
            deferAccept: 5,
          },
          () => undefined,
        );
        cleanup.add(() => tcp.close({ gracefulTimeout: 0 }));
      });
    });
  }
});
