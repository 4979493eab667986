// The flags for running behind a load balancer and under load: the PROXY protocol and the
// admission limits, checked here like every other flag (usage text, exit status 2) and
// handed to the listener as its options of the same names.
import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { ADMISSION_LIMIT_MAX, DEFER_ACCEPT_MAX_SECONDS } from '../accept/admission.js';
import { TrustedProxies } from '../proxy/trusted_proxies.js';
import type { ProxyProtocolMode } from '../proxy/proxy_header_accumulator.js';

/** The listener options these flags set (absent: the library's default). */
export interface ProductionOptions {
  proxyProtocol?: ProxyProtocolMode;
  trustedProxies?: string[];
  maxConnections?: number;
  maxPendingHandshakes?: number;
  maxConnectionsPerAddress?: number;
  perAddressIPv6Prefix?: number;
  maxQueuedConnections?: number;
  deferAccept?: number;
}


function integerIn(min: number, max: number, unit: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`Expected a whole number of ${unit} from ${min} to ${max}.`);
    return n;
  };
}

function parseTrustedProxies(value: string): string[] {
  const entries = value.split(',').map((entry) => entry.trim());
  try {
    // The library's own check, so the flag accepts exactly what the option does.
    new TrustedProxies(entries);
  } catch (error) {
    throw new InvalidArgumentError(`Expected addresses and CIDR ranges, comma-separated (10.0.0.0/8,::1): ${(error as Error).message}.`);
  }
  return entries;
}

export function addProductionFlags(program: Command): Command {
  const count = integerIn(1, ADMISSION_LIMIT_MAX, 'connections');
  return program
    .addOption(new Option('--proxy-protocol <version>', 'expect a PROXY protocol header from the load balancer before TLS').choices(['v1', 'v2', 'any']))
    .addOption(new Option('--trusted-proxies <list>', 'load balancers allowed to send it: addresses and CIDR ranges, comma-separated (required with --proxy-protocol)').argParser(parseTrustedProxies))
    .addOption(new Option('--max-connections <n>', 'connections open at once; more wait in the kernel backlog').argParser(count))
    .addOption(new Option('--max-pending-handshakes <n>', 'connections in TLS setup at once; more wait in the kernel backlog').argParser(count))
    .addOption(new Option('--max-queued-connections <n>', 'while --max-connections or --max-pending-handshakes holds accepting back, clients beyond n waiting in the backlog are reset, oldest first').argParser(integerIn(0, ADMISSION_LIMIT_MAX, 'connections')))
    .addOption(new Option('--max-connections-per-address <n>', 'connections open at once per client address (the PROXY header\'s client with --proxy-protocol); more are closed').argParser(count))
    .addOption(new Option('--per-address-ipv6-prefix <bits>', 'the leading bits of an IPv6 client that --max-connections-per-address counts as one address (default 64)').argParser(integerIn(1, 128, 'bits')))
    .addOption(new Option('--defer-accept <seconds>', 'TCP_DEFER_ACCEPT: accept a connection only once it has sent data').argParser(integerIn(0, DEFER_ACCEPT_MAX_SECONDS, 'seconds')));
}

/** The flag of each listener option these flags set, to name the flag in a start-up failure. */
const FLAG_OF_OPTION: Readonly<Record<keyof ProductionOptions, string>> = {
  proxyProtocol: '--proxy-protocol',
  trustedProxies: '--trusted-proxies',
  maxConnections: '--max-connections',
  maxPendingHandshakes: '--max-pending-handshakes',
  maxConnectionsPerAddress: '--max-connections-per-address',
  perAddressIPv6Prefix: '--per-address-ipv6-prefix',
  maxQueuedConnections: '--max-queued-connections',
  deferAccept: '--defer-accept',
};

/** '--defer-accept' for 'deferAccept'; undefined for an option no production flag sets. */
export function flagOfOption(option: unknown): string | undefined {
  return typeof option === 'string' && Object.hasOwn(FLAG_OF_OPTION, option) ? FLAG_OF_OPTION[option as keyof ProductionOptions] : undefined;
}

/** The listener options, or a usage error when --proxy-protocol and --trusted-proxies are not given together. */
export function productionOptions(program: Command, flags: ProductionOptions): ProductionOptions {
  if ((flags.proxyProtocol === undefined) !== (flags.trustedProxies === undefined)) {
    program.error(flags.proxyProtocol === undefined ? 'error: --trusted-proxies needs --proxy-protocol' : 'error: --proxy-protocol needs --trusted-proxies', {
      exitCode: 2,
      code: 'cli.proxyWithoutTrusted',
    });
  }
  const options: ProductionOptions = {};
  for (const key of ['proxyProtocol', 'trustedProxies', 'maxConnections', 'maxPendingHandshakes', 'maxConnectionsPerAddress', 'perAddressIPv6Prefix', 'maxQueuedConnections', 'deferAccept'] as const) {
    if (flags[key] !== undefined) Object.assign(options, { [key]: flags[key] });
  }
  return options;
}
