// diagnostics_channel across threads: a worker's listener publishes on the worker's own
// channels, which the main thread's subscribers never see. The main thread looks, once a
// second, at which per-connection channels have subscribers and tells the workers; a worker
// subscribes to those only (publishing stays free without subscribers), and forwards what it
// sees through a bound (EventThrottle: a flood of connections must not flood the main thread's
// queue), with only what can cross a thread (no sockets; errors as their reports). The main
// thread publishes each on its own channel of the same name, with `listener` and `worker`.
import type { Channel } from 'node:diagnostics_channel';
import { channels } from '../diagnostics.js';
import { errorFrom, reportOf } from './protocol.js';
import type { ErrorReport } from './protocol.js';

export const FORWARDED_CHANNELS = ['accept', 'handshakeDone', 'handshakeFailed', 'connectionClose'] as const;
export type ForwardedChannel = (typeof FORWARDED_CHANNELS)[number];

/** How often the main thread looks for subscribers (a new subscriber misses at most this long). */
export const SUBSCRIBER_POLL_MS = 1000;

export type CloneableMessage = Record<string, unknown>;

/** The channels the main thread's subscribers listen on now. */
export function subscribedChannels(): ForwardedChannel[] {
  return FORWARDED_CHANNELS.filter((name) => channels[name].hasSubscribers);
}

function cloneable(value: unknown): unknown {
  if (value instanceof Error) return { error: reportOf(value) };
  try {
    structuredClone(value);
    return value;
  } catch {
    return undefined;
  }
}

/** A worker's message, reduced to what crosses a thread: `listener` dropped, errors as reports. */
export function toCloneable(message: unknown): CloneableMessage {
  const out: CloneableMessage = {};
  for (const [key, value] of Object.entries(message as Record<string, unknown>)) {
    if (key === 'listener') continue;
    const copy = cloneable(value);
    if (copy !== undefined) out[key] = copy;
  }
  return out;
}

/** The main thread's view of a forwarded message: errors rebuilt from their reports. */
export function fromCloneable(message: CloneableMessage): CloneableMessage {
  const out: CloneableMessage = {};
  for (const [key, value] of Object.entries(message)) {
    const report = (value as { error?: ErrorReport } | null)?.error;
    out[key] = value !== null && typeof value === 'object' && report !== undefined && Object.keys(value).length === 1 ? errorFrom(report) : value;
  }
  return out;
}

/** The worker's side: subscribes to the channels it is told, forwards through `admit`. */
export class DiagnosticsForwarder {
  private readonly subscribed = new Map<ForwardedChannel, (message: unknown) => void>();

  constructor(
    private readonly admit: () => boolean,
    private readonly forward: (channel: ForwardedChannel, message: CloneableMessage) => void,
  ) {}

  setChannels(wanted: readonly ForwardedChannel[]): void {
    for (const [name, subscriber] of this.subscribed) {
      if (wanted.includes(name)) continue;
      (channels[name] as Channel).unsubscribe(subscriber);
      this.subscribed.delete(name);
    }
    for (const name of wanted) {
      if (this.subscribed.has(name) || !FORWARDED_CHANNELS.includes(name)) continue;
      const subscriber = (message: unknown): void => {
        if (this.admit()) this.forward(name, toCloneable(message));
      };
      (channels[name] as Channel).subscribe(subscriber);
      this.subscribed.set(name, subscriber);
    }
  }

  stop(): void {
    this.setChannels([]);
  }
}
