// What the benchmark measures (scenarios, contenders, figures, goals) and the shape of
// benchmarks/results/*.json. The harness, the table, the SVG and the README section all read
// these definitions, so a figure is named and explained in one place.
import type { CertKind } from './certs.js';
import type { Summary } from './stats.js';

export type ContenderId = 'node' | 'native' | 'js' | 'c';

export const CONTENDERS: Record<ContenderId, { label: string; description: string }> = {
  node: { label: 'node', description: 'bare Node: net.createServer / tls.createServer with a prebuilt secure context (the baseline)' },
  native: { label: 'native', description: "this package, backend: 'native' (the C++ accept loop)" },
  js: { label: 'js', description: "this package, backend: 'js' (pure JS)" },
  c: { label: 'C', description: 'trivial C server (epoll + accept4, OpenSSL): the load generator’s ceiling, not a contender' },
};

export const BASELINE: ContenderId = 'node';

export type ScenarioKind = 'throughput' | 'latency' | 'memory';
export type ScenarioId =
  | 'tcp-churn'
  | 'tcp-churn-c1'
  | 'tcp-churn-c8'
  | 'tls-full-ecdsa'
  | 'tls-full-ecdsa-c1'
  | 'tls-full-ecdsa-c8'
  | 'tls-full-rsa'
  | 'tls-resume'
  | 'tls-alpn'
  | 'tls-alpn-c1'
  | 'tls-alpn-c8'
  | 'tls-alpn-c1-defer'
  | 'tls-proxy'
  | 'tls-proxy-c1'
  | 'latency-tcp'
  | 'latency-tls'
  | 'latency-tls-90'
  | 'latency-tls-150'
  | 'idle-memory';

export interface ScenarioDef {
  id: ScenarioId;
  title: string;
  kind: ScenarioKind;
  transport: 'tcp' | 'tls';
  cert?: CertKind;
  /** loadgen mode for the measured load (throughput) or the warm-up (latency) */
  loadgenMode: 'tcp-churn' | 'tls-full' | 'tls-resume';
  headline: FigureId;
  /**
   * The servers offer ALPN h2 and http/1.1 (this package: `alpn`, its ClientHello stage; bare
   * Node: `ALPNProtocols`), and the clients offer h2, http/1.1.
   */
  alpn?: boolean;
  /**
   * The clients send a PROXY protocol version 2 header (28 bytes) before the ClientHello; this
   * package reads it with `proxyProtocol: 'v2'`, bare Node with a net.Server that reads it and
   * passes the socket to tls.createServer. The trivial C server does not run.
   */
  proxy?: boolean;
  /**
   * This package's contenders run with `deferAccept` (seconds of TCP_DEFER_ACCEPT, which the
   * README recommends for TLS): a connection is accepted once its first bytes are in. Bare Node
   * has no such option and runs as it is.
   */
  deferAccept?: number;
  /** throughput scenarios: connections in flight; absent: the run's default (64, 32 with --quick) */
  concurrency?: number;
  /** latency scenarios: the throughput scenario whose capacity sets the offered rate */
  capacityFrom?: ScenarioId;
  /** latency scenarios: offered rate as a fraction of that capacity (default 0.5) */
  loadFraction?: number;
  /**
   * latency scenarios: this package's contenders run with `maxPendingHandshakes` (admission
   * control) when their listener accepts the option; bare Node runs as it is.
   */
  maxPendingHandshakes?: number;
  /**
   * latency scenarios, with maxPendingHandshakes: this package's contenders also bound the
   * clients waiting in the accept queue while paused (`maxQueuedConnections`); the oldest
   * beyond it are reset. Only the native backend can see the queue.
   */
  maxQueuedConnections?: number;
}

export const SCENARIOS: readonly ScenarioDef[] = [
  { id: 'tcp-churn', title: 'Plain TCP churn (connect, 1 byte, close)', kind: 'throughput', transport: 'tcp', loadgenMode: 'tcp-churn', headline: 'cpuPerConnUs' },
  { id: 'tcp-churn-c1', title: 'Plain TCP churn, one connection at a time', kind: 'throughput', transport: 'tcp', loadgenMode: 'tcp-churn', headline: 'cpuPerConnUs', concurrency: 1 },
  { id: 'tcp-churn-c8', title: 'Plain TCP churn, 8 connections in flight', kind: 'throughput', transport: 'tcp', loadgenMode: 'tcp-churn', headline: 'cpuPerConnUs', concurrency: 8 },
  { id: 'tls-full-ecdsa', title: 'TLS 1.3 full handshake, ECDSA P-256', kind: 'throughput', transport: 'tls', cert: 'ecdsa-p256', loadgenMode: 'tls-full', headline: 'cpuPerConnUs' },
  { id: 'tls-full-ecdsa-c1', title: 'TLS 1.3 full handshake, ECDSA P-256, one connection at a time', kind: 'throughput', transport: 'tls', cert: 'ecdsa-p256', loadgenMode: 'tls-full', headline: 'cpuPerConnUs', concurrency: 1 },
  { id: 'tls-full-ecdsa-c8', title: 'TLS 1.3 full handshake, ECDSA P-256, 8 in flight', kind: 'throughput', transport: 'tls', cert: 'ecdsa-p256', loadgenMode: 'tls-full', headline: 'cpuPerConnUs', concurrency: 8 },
  { id: 'tls-full-rsa', title: 'TLS 1.3 full handshake, RSA-2048', kind: 'throughput', transport: 'tls', cert: 'rsa-2048', loadgenMode: 'tls-full', headline: 'cpuPerConnUs' },
  { id: 'tls-resume', title: 'TLS 1.3 resumed handshake (session ticket), ECDSA P-256', kind: 'throughput', transport: 'tls', cert: 'ecdsa-p256', loadgenMode: 'tls-resume', headline: 'cpuPerConnUs' },
  { id: 'tls-alpn', title: 'TLS 1.3 full handshake, ECDSA P-256, with ALPN (h2, http/1.1)', kind: 'throughput', transport: 'tls', cert: 'ecdsa-p256', loadgenMode: 'tls-full', headline: 'cpuPerConnUs', alpn: true },
  { id: 'tls-alpn-c1', title: 'TLS 1.3 full handshake with ALPN, one connection at a time', kind: 'throughput', transport: 'tls', cert: 'ecdsa-p256', loadgenMode: 'tls-full', headline: 'cpuPerConnUs', alpn: true, concurrency: 1 },
  { id: 'tls-alpn-c8', title: 'TLS 1.3 full handshake with ALPN, 8 in flight', kind: 'throughput', transport: 'tls', cert: 'ecdsa-p256', loadgenMode: 'tls-full', headline: 'cpuPerConnUs', alpn: true, concurrency: 8 },
  {
    id: 'tls-alpn-c1-defer',
    title: 'TLS 1.3 full handshake with ALPN, one connection at a time; this package with deferAccept: 1',
    kind: 'throughput',
    transport: 'tls',
    cert: 'ecdsa-p256',
    loadgenMode: 'tls-full',
    headline: 'cpuPerConnUs',
    alpn: true,
    concurrency: 1,
    // One client at a time, the accept usually comes before the ClientHello, which then waits
    // in the native peeker; deferred, the hello is queued at the accept, and is opened at once.
    deferAccept: 1,
  },
  { id: 'tls-proxy', title: 'TLS 1.3 full handshake with ALPN behind a PROXY v2 balancer', kind: 'throughput', transport: 'tls', cert: 'ecdsa-p256', loadgenMode: 'tls-full', headline: 'cpuPerConnUs', alpn: true, proxy: true },
  { id: 'tls-proxy-c1', title: 'TLS 1.3 full handshake with ALPN behind a PROXY v2 balancer, one connection at a time', kind: 'throughput', transport: 'tls', cert: 'ecdsa-p256', loadgenMode: 'tls-full', headline: 'cpuPerConnUs', alpn: true, proxy: true, concurrency: 1 },
  { id: 'latency-tcp', title: 'Latency at 50% load, plain TCP (connect to first byte)', kind: 'latency', transport: 'tcp', loadgenMode: 'tcp-churn', headline: 'p99Us', capacityFrom: 'tcp-churn' },
  { id: 'latency-tls', title: 'Latency at 50% load, TLS 1.3 full handshake ECDSA (connect to first byte)', kind: 'latency', transport: 'tls', cert: 'ecdsa-p256', loadgenMode: 'tls-full', headline: 'p99Us', capacityFrom: 'tls-full-ecdsa' },
  { id: 'latency-tls-90', title: 'Latency at 90% load, TLS 1.3 full handshake ECDSA', kind: 'latency', transport: 'tls', cert: 'ecdsa-p256', loadgenMode: 'tls-full', headline: 'p99Us', capacityFrom: 'tls-full-ecdsa', loadFraction: 0.9 },
  {
    id: 'latency-tls-150',
    title: 'Latency at 150% load (overload), TLS 1.3 full handshake ECDSA; this package with maxPendingHandshakes: 4, maxQueuedConnections: 8',
    kind: 'latency',
    transport: 'tls',
    cert: 'ecdsa-p256',
    loadgenMode: 'tls-full',
    headline: 'p99Us',
    capacityFrom: 'tls-full-ecdsa',
    loadFraction: 1.5,
    // From the measured service time (0.5-1 ms of CPU per handshake on this machine): a served
    // client waits for about maxQueuedConnections + 2 x maxPendingHandshakes handshakes (its
    // own takes two turns among those in setup), 8-16 ms, against a p99 of 6-13 ms at 50% load.
    maxPendingHandshakes: 4,
    maxQueuedConnections: 8,
  },
  { id: 'idle-memory', title: 'Memory per idle TLS connection (ECDSA P-256)', kind: 'memory', transport: 'tls', cert: 'ecdsa-p256', loadgenMode: 'tls-full', headline: 'rssPerConnKiB' },
];

export type FigureId =
  | 'cpuPerConnUs'
  | 'connsPerSec'
  | 'serverCpuCores'
  | 'loadgenCpuCores'
  | 'otherCpuCores'
  | 'stealCores'
  | 'errors'
  | 'resumedFraction'
  | 'p50Us'
  | 'p99Us'
  | 'p999Us'
  | 'meanUs'
  | 'offeredRate'
  | 'achievedRate'
  | 'samples'
  | 'served'
  | 'refused'
  | 'timedOut'
  | 'shed'
  | 'shedCpuShare'
  | 'shedCpuPerConnUs'
  | 'rssPerConnKiB'
  | 'heapPerConnKiB'
  | 'setupCpuPerConnUs';

export interface FigureDef {
  label: string;
  unit: string;
  /** 'lower' or 'higher' is better; 'none' for context figures (no ratio is computed) */
  better: 'lower' | 'higher' | 'none';
  description: string;
}

export const FIGURES: Record<FigureId, FigureDef> = {
  cpuPerConnUs: { label: 'server CPU/conn', unit: 'µs', better: 'lower', description: "server process CPU time (user+sys, its own process.cpuUsage() or getrusage) over the measured window, divided by the connections completed in it" },
  connsPerSec: { label: 'throughput', unit: 'conns/s', better: 'higher', description: 'connections completed per second by the load generator (closed loop, fixed concurrency)' },
  serverCpuCores: { label: 'server CPU', unit: 'cores', better: 'none', description: 'server CPU time / wall time of the window (1.0 = one core busy)' },
  loadgenCpuCores: { label: 'loadgen CPU', unit: 'cores', better: 'none', description: 'the load generator’s own CPU time / wall time (near 1.0: the load generator is the limit)' },
  otherCpuCores: { label: 'other CPU', unit: 'cores', better: 'none', description: 'CPU used during the window by every process except the server and the load generator (from /proc/stat): interference; near 0 on a quiet machine' },
  stealCores: { label: 'steal', unit: 'cores', better: 'none', description: 'CPU time the hypervisor took from this VM during the window (/proc/stat steal)' },
  errors: { label: 'errors', unit: 'conns', better: 'none', description: 'connections that failed (refused, reset, timed out, wrong certificate or TLS version)' },
  resumedFraction: { label: 'resumed', unit: 'fraction', better: 'none', description: 'fraction of handshakes that actually resumed the session' },
  p50Us: { label: 'p50', unit: 'µs', better: 'lower', description: 'median connect() to first byte' },
  p99Us: { label: 'p99', unit: 'µs', better: 'lower', description: '99th percentile connect() to first byte' },
  p999Us: { label: 'p99.9', unit: 'µs', better: 'lower', description: '99.9th percentile connect() to first byte' },
  meanUs: { label: 'mean', unit: 'µs', better: 'lower', description: 'mean connect() to first byte' },
  offeredRate: { label: 'offered rate', unit: 'conns/s', better: 'none', description: 'fixed arrival rate: the scenario’s fraction (50%, 90%, 150%) of the slowest contender’s measured capacity' },
  achievedRate: { label: 'achieved rate', unit: 'conns/s', better: 'none', description: 'connections completed per second at the offered rate' },
  samples: { label: 'samples', unit: 'conns', better: 'none', description: 'latency samples in the trial (connections served: the percentiles are of these)' },
  served: { label: 'served', unit: 'conns', better: 'none', description: 'connections that got their first byte in the measured window' },
  refused: { label: 'refused', unit: 'conns', better: 'none', description: 'connections refused or reset before their first byte (connect or reset errors)' },
  shed: { label: 'shed', unit: 'conns', better: 'none', description: 'connections the server reset from its accept queue beyond maxQueuedConnections (stats().rejected.maxQueuedConnections; the load generator counts them as refused)' },
  shedCpuShare: { label: 'shed CPU share', unit: 'fraction', better: 'none', description: 'server CPU spent shedding (stats().admission.sheddingCpuMs: the accept, setsockopt and close of each, measured on the thread’s CPU clock) / the server’s whole CPU in the window' },
  shedCpuPerConnUs: { label: 'CPU/shed conn', unit: 'µs', better: 'none', description: 'server CPU spent shedding, per connection shed' },
  timedOut: { label: 'timed out', unit: 'conns', better: 'none', description: 'connections with no first byte within the load generator’s 10 s timeout' },
  rssPerConnKiB: { label: 'RSS/idle conn', unit: 'KiB', better: 'lower', description: 'server RSS growth with the idle TLS connections held (after a full GC), divided by their number' },
  heapPerConnKiB: { label: 'heap+external/conn', unit: 'KiB', better: 'lower', description: 'V8 heapUsed + external growth per held connection (Node processes only)' },
  setupCpuPerConnUs: { label: 'setup CPU/conn', unit: 'µs', better: 'lower', description: 'server CPU spent bringing the idle connections up, per connection' },
};

/** Above this much CPU used by other processes during a trial's window, the trial is flagged. */
export const INTERFERENCE_CORES = 0.15;

export interface Goal {
  id: string;
  text: string;
  scenario: ScenarioId;
  figure: FigureId;
  contender: ContenderId;
  /** met when the median ratio contender/baseline is <= target */
  target: number;
}

export const GOALS: readonly Goal[] = [
  { id: 'tcp-cpu', text: 'plain TCP: native CPU/conn <= 0.7x net.createServer', scenario: 'tcp-churn', figure: 'cpuPerConnUs', contender: 'native', target: 0.7 },
  { id: 'tls-full-ecdsa-cpu', text: 'TLS full handshake (ECDSA): native CPU/conn <= 0.9x tls.createServer', scenario: 'tls-full-ecdsa', figure: 'cpuPerConnUs', contender: 'native', target: 0.9 },
  { id: 'tls-full-rsa-cpu', text: 'TLS full handshake (RSA): native CPU/conn <= 0.9x tls.createServer', scenario: 'tls-full-rsa', figure: 'cpuPerConnUs', contender: 'native', target: 0.9 },
  { id: 'latency-tcp-p99', text: 'p99 at a fixed rate (TCP): native <= 0.8x net.createServer', scenario: 'latency-tcp', figure: 'p99Us', contender: 'native', target: 0.8 },
  { id: 'latency-tls-p99', text: 'p99 at a fixed rate (TLS): native <= 0.8x tls.createServer', scenario: 'latency-tls', figure: 'p99Us', contender: 'native', target: 0.8 },
  { id: 'idle-memory', text: 'memory per idle TLS connection: native <= tls.createServer', scenario: 'idle-memory', figure: 'rssPerConnKiB', contender: 'native', target: 1.0 },
];

// ---- results file ---------------------------------------------------------------------

export interface TrialResult {
  round: number;
  contender: ContenderId;
  ok: boolean;
  error?: string;
  warnings?: string[];
  figures: Partial<Record<FigureId, number>>;
  /** the load generator's JSON line and the server's report, as they came */
  raw?: { loadgen?: Record<string, unknown>; server?: Record<string, unknown>; serverBefore?: Record<string, unknown> };
}

export interface ContenderResult {
  figures: Partial<Record<FigureId, Summary>>;
  /** contender / baseline, trial by trial within each round */
  ratios: Partial<Record<FigureId, Summary>>;
  trials: TrialResult[];
}

export interface ScenarioResult {
  id: ScenarioId;
  title: string;
  kind: ScenarioKind;
  headline: FigureId;
  settings: Record<string, number | string>;
  contenders: Partial<Record<ContenderId, ContenderResult>>;
  /** throughput scenarios: the load generator against the trivial C server */
  ceiling?: { connsPerSec: Summary | null; loadgenCpuCores: Summary | null; fastestNodeContender: { contender: ContenderId; connsPerSec: number } | null };
}

export interface NodeVersions {
  node: string;
  openssl: string;
  uv: string;
  v8: string;
}

export interface NodeRun {
  execPath: string;
  versions: NodeVersions;
  scenarios: Partial<Record<ScenarioId, ScenarioResult>>;
}

export interface GoalResult extends Goal {
  nodeVersion: string;
  ratio: Summary | null;
  met: boolean | null;
}

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  arch: string;
}

export interface BenchResults {
  schema: 1;
  generatedAt: string;
  quick: boolean;
  command: string;
  durationSeconds: number;
  machine: Machine;
  loadgen: { openssl: string; compiler: string };
  settings: Record<string, number | string | boolean>;
  /** keyed by Node version, e.g. "20.20.2" */
  runs: Record<string, NodeRun>;
  goals: GoalResult[];
  failures: string[];
}
