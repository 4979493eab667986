// What a TLSSocket opened at the accept for a hello already queued there (src/tls/hello_stage.ts)
// was opened with: the hello's decision and the contexts serving then. The connection's setup,
// which starts later, goes by these, not by contexts a reload may have swapped in since.
import type tls from 'node:tls';
import type { HelloDecision, ServingContexts } from './tls_setup.js';

const kOpenedAtAccept = Symbol('native-tls-listener.opened-at-accept');

export interface OpenedAtAccept {
  hello: HelloDecision | undefined;
  contexts: Readonly<ServingContexts>;
}

type Marked = tls.TLSSocket & { [kOpenedAtAccept]?: OpenedAtAccept };

export function markOpenedAtAccept(socket: tls.TLSSocket, opened: OpenedAtAccept): void {
  (socket as Marked)[kOpenedAtAccept] = opened;
}

/** What `socket` was opened with at the accept; undefined for any other socket. */
export function openedAtAccept(socket: object): OpenedAtAccept | undefined {
  return (socket as Marked)[kOpenedAtAccept];
}
