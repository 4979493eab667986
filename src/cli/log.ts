// What the CLI reports, in the form the user asked for. `text` (the default) is for people: the
// banner and the final statistics on stdout, one `native-tls-listener: ...` line per event on
// stderr. `json` is for log collectors: every event is one JSON object on one line of stdout
// (`time`, `level`, `event`, `message`, and the event's fields), and nothing else is written.
import type { ListenerStats } from '../index.js';
import { finalStatsLine, fingerprintLine, startBanner } from './banner.js';
import type { BannerFacts } from './banner.js';
import { curlCommand, formatFingerprint, opensslCommand, servedBy } from './banner.js';

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type LogLevel = 'info' | 'warn' | 'error';

/** The fields an event carries besides its name and message: plain JSON values. */
export type LogFields = Record<string, string | number | boolean | null | object>;

export interface CliLog {
  /** One event: `message` is the human line, `fields` what a machine reads. */
  event(level: LogLevel, event: string, message: string, fields?: LogFields): void;
  /** The server listens: the banner, or a `listening` event with the same facts. */
  listening(facts: BannerFacts): void;
  /** The server stopped: the final statistics (a `stopped` event in JSON). */
  stopped(stats: ListenerStats, exitCode: number): void;
  /** New certificates are served: a log line and the fingerprint line again, or one event. */
  reloaded(reason: string, fingerprintOf: string, fingerprint: Buffer): void;
}

export interface LogOutput {
  out(text: string): void;
  err(text: string): void;
}

class TextLog implements CliLog {
  constructor(private readonly output: LogOutput) {}

  event(_level: LogLevel, _event: string, message: string): void {
    this.output.err(`native-tls-listener: ${message}\n`);
  }

  listening(facts: BannerFacts): void {
    this.output.out(startBanner(facts));
  }

  stopped(stats: ListenerStats): void {
    this.output.out(finalStatsLine(stats));
  }

  reloaded(reason: string, fingerprintOf: string, fingerprint: Buffer): void {
    this.event('info', 'reloaded', `certificates reloaded (${reason})`);
    this.output.out(`${fingerprintLine(fingerprintOf, fingerprint)}\n`);
  }
}

class JsonLog implements CliLog {
  constructor(private readonly output: LogOutput) {}

  event(level: LogLevel, event: string, message: string, fields: LogFields = {}): void {
    // The fixed keys come last so that no field can overwrite them.
    const line = { ...fields, time: new Date().toISOString(), level, event, message };
    this.output.out(`${JSON.stringify(line)}\n`);
  }

  listening(facts: BannerFacts): void {
    const { address, port, family } = facts.address;
    const fields: LogFields = {
      version: facts.version,
      address,
      port,
      family,
      backend: facts.backend,
      ...(facts.workers !== undefined ? { workers: facts.workers } : {}),
      fingerprint: formatFingerprint(facts.fingerprint),
      fingerprintOf: facts.fingerprintOf,
      trustFile: facts.trustFile,
      opensslCommand: opensslCommand(facts),
    };
    if (facts.https !== undefined) fields.https = { ...facts.https, curlCommand: curlCommand(facts.address, facts.https) };
    if (facts.notes.length > 0) fields.notes = facts.notes;
    this.event('info', 'listening', `listening on ${address}:${port} (${servedBy(facts)})`, fields);
  }

  stopped(stats: ListenerStats, exitCode: number): void {
    this.event(exitCode === 0 ? 'info' : 'error', 'stopped', 'stopped', { exitCode, stats });
  }

  reloaded(reason: string, fingerprintOf: string, fingerprint: Buffer): void {
    this.event('info', 'reloaded', `certificates reloaded (${reason})`, { reason, fingerprintOf, fingerprint: formatFingerprint(fingerprint) });
  }
}

export function createCliLog(format: LogFormat, output: LogOutput): CliLog {
  return format === 'json' ? new JsonLog(output) : new TextLog(output);
}
