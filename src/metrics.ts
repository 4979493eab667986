// The listener's statistics in the Prometheus text exposition format (version 0.0.4), so a
// user can serve them from any HTTP endpoint. Counters end in _total; gauges do not.
import type { ListenerStats } from './listener.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const PREFIX = 'native_tls_listener_';

type Labels = Readonly<Record<string, string>>;

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',')}}`;
}

class Exposition {
  private readonly lines: string[] = [];

  constructor(private readonly constantLabels: Labels) {}

  family(name: string, type: 'counter' | 'gauge', help: string, samples: Array<[Labels, number]>): void {
    this.lines.push(`# HELP ${PREFIX}${name} ${help}`, `# TYPE ${PREFIX}${name} ${type}`);
    for (const [labels, value] of samples) {
      this.lines.push(`${PREFIX}${name}${formatLabels({ ...this.constantLabels, ...labels })} ${value}`);
    }
  }

  /** A histogram from per-bucket counts: Prometheus wants them cumulative, `le` in seconds. */
  histogram(name: string, help: string, boundsMs: readonly number[], counts: readonly number[], sumMs: number): void {
    this.lines.push(`# HELP ${PREFIX}${name} ${help}`, `# TYPE ${PREFIX}${name} histogram`);
    let cumulative = 0;
    counts.forEach((count, index) => {
      cumulative += count;
      const bound = boundsMs[index];
      const le = bound === undefined ? '+Inf' : String(bound / 1000);
      this.lines.push(`${PREFIX}${name}_bucket${formatLabels({ ...this.constantLabels, le })} ${cumulative}`);
    });
    this.lines.push(`${PREFIX}${name}_sum${formatLabels(this.constantLabels)} ${sumMs / 1000}`);
    this.lines.push(`${PREFIX}${name}_count${formatLabels(this.constantLabels)} ${cumulative}`);
  }

  toString(): string {
    return this.lines.join('\n') + '\n';
  }
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function formatPrometheus(stats: ListenerStats, constantLabels: Labels = {}): string {
  for (const name of Object.keys(constantLabels)) {
    if (!LABEL_NAME.test(name)) throw new TypeError(`invalid Prometheus label name: ${name}`);
  }
  const out = new Exposition(constantLabels);
  out.family('connections_accepted_total', 'counter', 'Connections accepted by the listening socket.', [[{}, stats.accepted]]);
  out.family('connections_closed_total', 'counter', 'Connections whose descriptor has been released.', [[{}, stats.closed]]);
  out.family('connections_active', 'gauge', 'Connections open and tracked.', [[{}, stats.active]]);
  out.family('connections_in_setup', 'gauge', 'Connections open and not yet past their setup (the TLS handshake).', [[{}, stats.inSetup]]);
  out.family('connections_leaked', 'gauge', 'Accepted connections neither closed nor tracked (should be 0).', [[{}, stats.leaked]]);
  out.family('handshakes_total', 'counter', 'TLS setups by result.', [
    [{ result: 'completed' }, stats.handshakes.completed],
    [{ result: 'failed' }, stats.handshakes.failed],
    [{ result: 'timed_out' }, stats.handshakes.timedOut],
    [{ result: 'aborted' }, stats.handshakes.aborted],
  ]);
  if (stats.setupFailures !== undefined) {
    out.family(
      'setup_failures_total',
      'counter',
      'Failed or timed-out connection setups by error code.',
      Object.entries(stats.setupFailures).map(([code, count]): [Labels, number] => [{ code }, count]),
    );
  }
  if (stats.handshakeTime !== undefined) {
    const { boundsMs, counts, sumMs } = stats.handshakeTime;
    out.histogram('handshake_duration_seconds', 'Time from accept to a completed TLS setup.', boundsMs, counts, sumMs);
  }
  out.family('handshakes_by_credential_total', 'counter', 'Completed TLS setups by the credential that served them.', [
    [{ credential: 'sni' }, stats.sni.sniCredential],
    [{ credential: 'primary' }, stats.sni.primaryCredential],
  ]);
  out.family(
    'accept_retries_total',
    'counter',
    'accept() calls retried after a network error of the pending connection.',
    Object.entries(stats.acceptRetries).map(([code, count]): [Labels, number] => [{ code }, count]),
  );
  out.family('accept_pauses_total', 'counter', 'Times accepting paused: out of descriptors or memory, or one accept() error repeating.', [[{}, stats.acceptPauses]]);
  out.family(
    'connections_rejected_total',
    'counter',
    'Connections closed at accept by admission control, by the limit they were over.',
    Object.entries(stats.rejected).map(([reason, count]): [Labels, number] => [{ reason }, count]),
  );
  out.family('accept_backpressure_pauses_total', 'counter', 'Times accepting paused at maxConnections or maxPendingHandshakes.', [
    [{}, stats.admission.pauses],
  ]);
  out.family('accept_backpressure_seconds_total', 'counter', 'Seconds accepting was paused at an admission limit.', [
    [{}, stats.admission.pausedMs / 1000],
  ]);
  if (stats.admission.backlog !== null) {
    out.family('accept_backlog', 'gauge', 'Clients waiting in the listening socket\'s accept queue.', [[{}, stats.admission.backlog]]);
  }
  out.family('handler_errors_total', 'counter', 'Handlers that threw or rejected.', [[{}, stats.handlerErrors]]);
  out.family('idle_timeouts_total', 'counter', 'Connections closed by the idle timeout.', [[{}, stats.idleTimeouts]]);
  out.family('proxy_protocol_rejections_total', 'counter', 'Connections closed before TLS for their PROXY protocol header, by reason.', [
    [{ reason: 'invalid' }, stats.proxyProtocol.invalid],
    [{ reason: 'untrusted' }, stats.proxyProtocol.untrusted],
  ]);
  out.family('proxy_protocol_health_checks_total', 'counter', 'A trusted proxy\'s health checks: a PROXY header, then a close with no byte after it.', [
    [{}, stats.proxyProtocol.healthChecks],
  ]);
  return out.toString();
}
