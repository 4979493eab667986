// With --workers the CLI's handlers run in worker threads, but the statistics they show are the
// listener's as a whole, which only the main thread has (`listener.stats()` reads every
// worker's book and the accept thread's counts). They cross on a BroadcastChannel: a worker
// asks, the main thread answers with a fresh snapshot (and the Prometheus text when asked), and
// every worker keeps the latest snapshot it saw. A main thread that does not answer in time (it
// is busy: the workers keep serving) leaves the worker with the latest snapshot it has.
import { BroadcastChannel, threadId } from 'node:worker_threads';
import type { ListenerStats } from '../index.js';

/** One per process: the CLI runs one listener. */
export const STATS_CHANNEL = 'native-tls-listener:cli-stats';

/** How long a worker waits for the main thread's answer before it serves the latest snapshot. */
export const STATS_ANSWER_TIMEOUT_MS = 1000;

interface StatsRequest {
  type: 'request';
  /** Unique across threads: the asking thread's id and its own sequence number. */
  id: string;
  metrics: boolean;
}

export interface StatsSnapshot {
  type: 'snapshot';
  replyTo: string;
  stats: ListenerStats;
  metrics?: string;
}

export interface StatsProvider {
  stats(): ListenerStats;
  metrics(): string;
}

function isRequest(message: unknown): message is StatsRequest {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'request';
}

function isSnapshot(message: unknown): message is StatsSnapshot {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'snapshot';
}

/** The main thread's side: answers every request until closed. */
export function answerStatsRequests(source: StatsProvider): { close(): void } {
  const channel = new BroadcastChannel(STATS_CHANNEL);
  // The listener keeps the process alive while it serves; this channel must not after it closes.
  channel.unref();
  channel.onmessage = (event) => {
    const request: unknown = event.data;
    if (!isRequest(request)) return;
    const answer: StatsSnapshot = { type: 'snapshot', replyTo: request.id, stats: source.stats() };
    if (request.metrics) answer.metrics = source.metrics();
    channel.postMessage(answer);
  };
  return { close: () => channel.close() };
}

/** A worker's side: the main thread's statistics on request, or the latest it answered. */
export class MainThreadStats {
  private readonly channel = new BroadcastChannel(STATS_CHANNEL);
  private readonly waiting = new Map<string, (snapshot: StatsSnapshot) => void>();
  private latest: StatsSnapshot | null = null;
  private latestMetrics: string | null = null;
  private seq = 0;

  constructor(private readonly timeoutMs = STATS_ANSWER_TIMEOUT_MS) {
    // The worker's listener decides when the worker ends, not this channel.
    this.channel.unref();
    this.channel.onmessage = (event) => {
      const snapshot: unknown = event.data;
      if (!isSnapshot(snapshot)) return;
      // Answers to other workers are fresh too: keep them for a main thread that is late.
      this.latest = snapshot;
      if (snapshot.metrics !== undefined) this.latestMetrics = snapshot.metrics;
      this.waiting.get(snapshot.replyTo)?.(snapshot);
    };
  }

  async stats(): Promise<ListenerStats> {
    const snapshot = await this.ask(false);
    if (snapshot) return snapshot.stats;
    if (this.latest) return this.latest.stats;
    throw new Error(`the main thread did not answer within ${this.timeoutMs} ms`);
  }

  async metrics(): Promise<string> {
    const snapshot = await this.ask(true);
    if (snapshot?.metrics !== undefined) return snapshot.metrics;
    if (this.latestMetrics !== null) return this.latestMetrics;
    throw new Error(`the main thread did not answer within ${this.timeoutMs} ms`);
  }

  close(): void {
    this.channel.close();
  }

  /** The answer to a new request, or null when none came in time. */
  private ask(metrics: boolean): Promise<StatsSnapshot | null> {
    const id = `${threadId}:${++this.seq}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(null), this.timeoutMs);
      const finish = (snapshot: StatsSnapshot | null): void => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(snapshot);
      };
      this.waiting.set(id, finish);
      this.channel.postMessage({ type: 'request', id, metrics } satisfies StatsRequest);
    });
  }
}
