// What each worker thread runs when the CLI is started with --workers (the listener's
// `workers.module`): the same handlers as on one thread, the line protocol for clients without
// SNI (the default export) and HTTPS for clients with SNI (`http`), showing the listener's
// statistics as a whole, which the main thread answers on the stats channel.
import { threadId } from 'node:worker_threads';
import { createLineProtocolHandler } from './line_protocol.js';
import { createWebHandler } from './web.js';
import { MainThreadStats } from './stats_channel.js';

const mainThread = new MainThreadStats();

export default createLineProtocolHandler(() => mainThread.stats(), `worker thread ${threadId}`);

export const http = createWebHandler({
  // Workers need the native acceptor's accept thread.
  backend: 'native',
  stats: () => mainThread.stats(),
  metrics: () => mainThread.metrics(),
});
