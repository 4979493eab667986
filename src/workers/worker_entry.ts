// What runs in each worker thread: imports the user's module, builds the same listener the main
// thread would (TLS contexts built once here, with the ticket keys every worker shares), takes
// descriptors from its queue on the main thread's accept thread, and reports back: ready or
// failed, client and handler errors (bounded), and closed.
import type net from 'node:net';
import type tls from 'node:tls';
import { parentPort } from 'node:worker_threads';
import { loadNativeBinding } from '../native/load.js';
import { codedError, ErrorCodes } from '../errors.js';
import { TCPListener } from '../tcp_listener.js';
import { TLSListener } from '../tls/tls_listener.js';
import type { ConnectionHandler, HttpTarget } from '../tls/tls_listener.js';
import type { TCPConnectionInfo } from '../tcp_listener.js';
import type { Handler } from '../listener.js';
import { toSecureContext } from '../tls/credentials.js';
import { setContextTicketKeys } from '../node_internals.js';
import { dispatchBindingOf } from './dispatch_binding.js';
import { PublishingRegistry } from './publishing_registry.js';
import { SetupBookWriter } from './setup_book.js';
import { QueueAcceptBackend } from './queue_backend.js';
import { SharedAddressCounts } from './shared_address_counts.js';
import { reportOf } from './protocol.js';
import type { MainToWorker, WorkerStart, WorkerToMain } from './protocol.js';
import { EventThrottle } from './event_throttle.js';
import { DiagnosticsForwarder } from './diagnostics_relay.js';
import type { AcceptSink } from '../accept/backend.js';


interface HandlerModule {
  default?: unknown;
  http?: unknown;
}

/** How often the books are published besides at each release (handshake counts move between). */
const PUBLISH_INTERVAL_MS = 100;

const port = parentPort;
if (!port) throw new Error('worker_entry runs only in a worker thread');

function post(message: WorkerToMain): void {
  port?.postMessage(message);
}

/**
 * The ticket keys every worker shares, on a context. Without SecureContext.setTicketKeys()
 * (src/node_internals.ts: reported there) nothing can set them, Node's own `ticketKeys` option
 * included: each context keeps the keys OpenSSL gave it, and a session resumes only on the
 * worker that issued it.
 */
function setTicketKeys(context: tls.SecureContext, keys: Uint8Array): void {
  setContextTicketKeys(context, keys);
}

async function main(): Promise<void> {
  const start = await new Promise<WorkerStart>((resolve) => port?.once('message', resolve));
  const binding = dispatchBindingOf(loadNativeBinding().binding);
  if (!binding) throw codedError(ErrorCodes.NATIVE_REQUIRED, 'the native acceptor did not load in the worker');
  const loaded = (await import(start.moduleUrl)) as HandlerModule;
  if (typeof loaded.default !== 'function') {
    throw codedError(ErrorCodes.INVALID_OPTION, `${start.moduleUrl} has no default export function (the connection handler)`);
  }
  // Typed by the listener it serves; what it really accepts is the user's business.
  const handler = loaded.default as ConnectionHandler & Handler<net.Socket, TCPConnectionInfo>;
  const registry = new PublishingRegistry(new SetupBookWriter(start.setupBook));
  let backend: QueueAcceptBackend | null = null;
  const dependencies = {
    registry,
    clientAddressCounts: new SharedAddressCounts(() => backend),
    acceptBackend: (sink: AcceptSink) => {
      backend = new QueueAcceptBackend(binding, { dispatcherId: start.dispatcherId, slot: start.slot, address: start.address }, sink, () =>
        registry.publish(),
      );
      return backend;
    },
  };
  // The contexts serving now, by role: the ticket keys go on each, and new credentials replace them.
  const contexts: { credential?: tls.SecureContext; sniCredential?: tls.SecureContext } = {};
  let ticketKeys = start.ticketKeys;
  let listener: TCPListener | TLSListener;
  const where = { host: '127.0.0.1', port: 0 };
  if (start.kind === 'tcp') {
    listener = new TCPListener({ ...where, ...start.options }, handler, dependencies);
  } else {
    const { credential, sniCredential, ...rest } = start.options;
    if (!credential) throw codedError(ErrorCodes.INVALID_OPTION, 'credential is required');
    const purpose = { requestClientCert: rest.requestClientCert === true };
    const context = toSecureContext(credential, 'credential', purpose);
    contexts.credential = context;
    const sniContext = sniCredential !== undefined ? toSecureContext(sniCredential, 'sniCredential', purpose) : undefined;
    if (sniContext) contexts.sniCredential = sniContext;
    if (ticketKeys) for (const c of Object.values(contexts)) setTicketKeys(c, ticketKeys);
    listener = new TLSListener(
      {
        ...where,
        ...rest,
        credential: context,
        ...(sniContext ? { sniCredential: sniContext } : {}),
        ...(loaded.http !== undefined ? { http: loaded.http as HttpTarget } : {}),
      },
      handler,
      dependencies,
    );
  }
  const throttle = new EventThrottle((count) => post({ type: 'suppressed', count }));
  // Its own bound: a flood of connections must not crowd out the error events, nor flood the main thread.
  const diagnosticsThrottle = new EventThrottle((count) => post({ type: 'suppressed', count }));
  const diagnostics = new DiagnosticsForwarder(
    () => diagnosticsThrottle.admit(),
    (channel, message) => post({ type: 'diagnostic', channel, message }),
  );
  for (const name of ['tlsClientError', 'connectionError'] as const) {
    listener.on(name, (error: Error, info: { id: number }) => {
      if (throttle.admit()) post({ type: 'event', name, error: reportOf(error), info: { ...info } });
    });
  }
  await listener.listen();
  const queue = backend as QueueAcceptBackend | null;
  registry.publishTo(
    (values) => queue?.publish(values),
    (slot) => queue?.releaseAddress(slot),
  );
  registry.publish();
  const publisher = setInterval(() => registry.publish(), PUBLISH_INTERVAL_MS);
  publisher.unref();
  port?.on('message', (message: MainToWorker) => {
    if (message.type === 'ticketKeys') {
      ticketKeys = message.keys;
      for (const c of Object.values(contexts)) setTicketKeys(c, message.keys);
      post({ type: 'ticketKeysSet', seq: message.seq });
    } else if (message.type === 'credentials') {
      try {
        // Checked on the main thread already; built here because a context cannot cross threads.
        const purpose = { requestClientCert: start.options.requestClientCert === true };
        const next: typeof contexts = {};
        if (message.credential) next.credential = toSecureContext(message.credential, 'credential', purpose);
        if (message.sniCredential) next.sniCredential = toSecureContext(message.sniCredential, 'sniCredential', purpose);
        // The shared ticket keys go on first, so sessions keep resuming across workers.
        if (ticketKeys) for (const c of Object.values(next)) setTicketKeys(c, ticketKeys);
        (listener as TLSListener).setCredentials(next);
        Object.assign(contexts, next);
        post({ type: 'credentialsSet', seq: message.seq });
      } catch (error) {
        post({ type: 'credentialsSet', seq: message.seq, error: reportOf(error) });
      }
    } else if (message.type === 'tracked') {
      post({ type: 'tracked', seq: message.seq, descriptors: [...registry.records()].map(({ id, fd }) => ({ id, fd })) });
    } else if (message.type === 'diagnostics') {
      diagnostics.setChannels(message.channels);
    } else if (message.type === 'close') {
      void listener.close(message.gracefulTimeout !== undefined ? { gracefulTimeout: message.gracefulTimeout } : {}).then(() => {
        clearInterval(publisher);
        throttle.stop();
        diagnostics.stop();
        diagnosticsThrottle.stop();
        registry.publish();
        post({ type: 'closed' });
      });
    }
  });
  post({ type: 'ready' });
}

main().catch((error: unknown) => {
  post({ type: 'failed', error: reportOf(error) });
  // The main thread replaces or reports this worker; nothing of it should keep running.
  process.exit(1);
});
