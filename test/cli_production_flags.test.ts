// The CLI's flags for running behind a load balancer and under load (--proxy-protocol,
// --trusted-proxies, the admission limits), driven from outside: the real command, real
// PROXY headers in front of real TLS clients, and its log lines and final statistics.
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { expect } from 'chai';
import { spawnCliProcess, stateDirFor } from './support/cli_process.js';
import { proxiedTlsConnect, v1, v2, inet4 } from './support/proxy_headers.js';
import { tlsConnect, useCleanup, waitUntil } from './support/tls_harness.js';

describe('CLI: --proxy-protocol and --trusted-proxies serve clients behind a balancer', function () {
  const cleanup = useCleanup();

  it('the header\'s client is served and logged; --max-connections-per-address counts it, not the balancer', async function () {
    this.timeout(30_000);
    const cli = spawnCliProcess(cleanup, [
      '--port', '0', '--state-dir', stateDirFor(cleanup), '--log-tls-errors',
      '--proxy-protocol', 'any', '--trusted-proxies', '10.0.0.0/8,127.0.0.1,::1', '--max-connections-per-address', '1',
      '--max-connections', '100', '--max-pending-handshakes', '50', '--defer-accept', '5',
    ]);
    const port = await cli.started();
    const first = proxiedTlsConnect(cleanup, port, v1('PROXY TCP4 198.51.100.7 192.0.2.1 40000 443'));
    await first.receive('native-tls-listener: connection 1');
    // The same client through the balancer again: over its limit, closed before TLS.
    const second = proxiedTlsConnect(cleanup, port, v2({ familyTransport: 0x11, addresses: inet4('198.51.100.7', '192.0.2.1', 40001, 443) }));
    await waitUntil(() => second.closed, 'the second connection from 198.51.100.7 closed');
    await cli.logged(/ERR_PER_ADDRESS_LIMIT.*198\.51\.100\.7|198\.51\.100\.7.*ERR_PER_ADDRESS_LIMIT/);
    // Another client through the same balancer is served.
    const other = proxiedTlsConnect(cleanup, port, v1('PROXY TCP4 198.51.100.8 192.0.2.1 40002 443'));
    await other.receive('native-tls-listener: connection 3');
    // A client straight to the server, without a header, is not.
    const direct = tlsConnect(cleanup, port);
    await waitUntil(() => direct.closed, 'the connection without a header closed');
    await cli.logged(/ERR_PROXY_PROTOCOL_INVALID/);
    for (const client of [first, other]) client.socket.destroy();
    expect((await cli.stop()).code).to.equal(0);
    const stats = cli.finalStats();
    expect(stats.rejected.maxConnectionsPerAddress).to.equal(1);
    expect(stats.proxyProtocol).to.deep.equal({ invalid: 1, untrusted: 0, healthChecks: 0 });
    expect(stats.leaked).to.equal(0);
  });

  it('a balancer not in --trusted-proxies: closed before TLS, logged ERR_PROXY_PROTOCOL_UNTRUSTED', async function () {
    this.timeout(30_000);
    const cli = spawnCliProcess(cleanup, ['--port', '0', '--state-dir', stateDirFor(cleanup), '--log-tls-errors', '--proxy-protocol', 'v1', '--trusted-proxies', '192.0.2.0/24']);
    const port = await cli.started();
    const client = proxiedTlsConnect(cleanup, port, v1('PROXY TCP4 198.51.100.7 192.0.2.1 40000 443'));
    await waitUntil(() => client.closed, 'the connection closed');
    await cli.logged(/ERR_PROXY_PROTOCOL_UNTRUSTED/);
    expect((await cli.stop()).code).to.equal(0);
    expect(cli.finalStats().proxyProtocol).to.deep.equal({ invalid: 0, untrusted: 1, healthChecks: 0 });
  });
});

describe('CLI: --max-queued-connections resets clients waiting beyond it while accepting is held back', function () {
  const cleanup = useCleanup();

  it('--max-pending-handshakes 1 --max-queued-connections 0: a second client, waiting while the first stalls its handshake, is reset', async function () {
    this.timeout(30_000);
    const cli = spawnCliProcess(cleanup, ['--port', '0', '--state-dir', stateDirFor(cleanup), '--max-pending-handshakes', '1', '--max-queued-connections', '0']);
    const port = await cli.started();
    // The first client says nothing: it holds the one setup slot until the handshake timeout.
    const stalling = net.connect({ port, host: '127.0.0.1' });
    stalling.on('error', () => undefined);
    cleanup.add(() => stalling.destroy());
    await once(stalling, 'connect');
    await waitUntil(() => cli.stdout.length > 0, 'the CLI to be running');
    const waiting = net.connect({ port, host: '127.0.0.1' });
    let reset = false;
    waiting.on('error', (error: NodeJS.ErrnoException) => (reset = error.code === 'ECONNRESET'));
    cleanup.add(() => waiting.destroy());
    await waitUntil(() => reset, 'the waiting client to be reset');
    stalling.destroy();
    expect((await cli.stop()).code).to.equal(0);
    const stats = cli.finalStats();
    expect(stats.rejected.maxQueuedConnections).to.be.at.least(1);
    expect(stats.accepted).to.equal(1);
    expect(stats.leaked).to.equal(0);
  });
});

describe('CLI: the production flags are checked like the others', function () {
  const cleanup = useCleanup();
  const usageErrors: Array<[string, string[], RegExp]> = [
    ['an unknown PROXY protocol version', ['--proxy-protocol', 'v3', '--trusted-proxies', '10.0.0.1'], /Allowed choices are v1, v2, any/],
    ['--proxy-protocol without --trusted-proxies', ['--proxy-protocol', 'v2'], /--proxy-protocol needs --trusted-proxies/],
    ['--trusted-proxies without --proxy-protocol', ['--trusted-proxies', '10.0.0.1'], /--trusted-proxies needs --proxy-protocol/],
    ['a trusted proxy that is not an address', ['--proxy-protocol', 'v2', '--trusted-proxies', '10.0.0.1,balancer'], /argument '10\.0\.0\.1,balancer' is invalid.*"balancer" is not an IP address or CIDR range/],
    ['a CIDR prefix out of range', ['--proxy-protocol', 'v2', '--trusted-proxies', '10.0.0.0/33'], /argument '10\.0\.0\.0\/33' is invalid/],
    ['--max-connections 0', ['--max-connections', '0'], /'--max-connections <n>' argument '0' is invalid/],
    ['--max-pending-handshakes that is not a number', ['--max-pending-handshakes', 'many'], /argument 'many' is invalid/],
    ['--max-connections-per-address over 2^31-1', ['--max-connections-per-address', '2147483648'], /argument '2147483648' is invalid/],
    ['--per-address-ipv6-prefix over 128', ['--per-address-ipv6-prefix', '129'], /argument '129' is invalid/],
    ['--defer-accept over an hour', ['--defer-accept', '3601'], /argument '3601' is invalid. Expected a whole number of seconds from 0 to 3600/],
  ];
  for (const [what, args, message] of usageErrors) {
    it(`${what}: the error and the usage on stderr, exit 2, nothing started`, async function () {
      const stateDir = `${stateDirFor(cleanup)}/state`;
      const cli = spawnCliProcess(cleanup, [...args, '--state-dir', stateDir]);
      expect((await cli.ended()).code).to.equal(2);
      expect(cli.stderr).to.match(message);
      expect(cli.stderr).to.include('Usage: native-tls-listener [options]');
      expect(cli.stdout).to.equal('');
      expect(fs.existsSync(stateDir), 'no state directory created').to.equal(false);
    });
  }

  it('--help lists them', async function () {
    const cli = spawnCliProcess(cleanup, ['--help']);
    expect((await cli.ended()).code).to.equal(0);
    for (const flag of ['--proxy-protocol <version>', '--trusted-proxies <list>', '--max-connections <n>', '--max-pending-handshakes <n>', '--max-connections-per-address <n>', '--per-address-ipv6-prefix <bits>', '--max-queued-connections <n>', '--defer-accept <seconds>']) {
      expect(cli.stdout).to.include(flag);
    }
  });
});
