// The pure-JS backend: net.Server underneath, for where the addon cannot load. libuv accepts
// one connection per wake-up and handles EMFILE itself, so it reports fewer accept errors.
import net from 'node:net';
import type { AcceptBackend, AcceptCounters, AcceptSink, ListenTarget } from './backend.js';
import { classifyAcceptError } from './accept_policy.js';
import type { SystemError } from '../errors.js';

export class JsAcceptBackend implements AcceptBackend {
  readonly kind = 'js' as const;
  private readonly server: net.Server;
  private accepted = 0;
  private pauses = 0;
  private readonly retriesByErrno: Record<string, number> = {};
  private listening = false;
  private closed = false;

  constructor(private readonly sink: AcceptSink) {
    this.server = net.createServer({ noDelay: false }, (socket) => {
      this.accepted++;
      this.sink.onSocket(socket);
    });
  }

  open(target: ListenTarget): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const onListenError = (error: Error): void => reject(error);
      this.server.once('error', onListenError);
      const onListening = (): void => {
        this.server.off('error', onListenError);
        this.server.on('error', (error: SystemError) => this.onServerError(error));
        this.listening = true;
        const address = this.address();
        if (address) resolve(address);
        else reject(new Error('listening socket has no address'));
      };
      if (target.kind === 'fd') {
        this.server.listen({ fd: target.fd, backlog: target.backlog }, onListening);
      } else {
        this.server.listen(
          { host: target.address.address, port: target.address.port, backlog: target.backlog, ipv6Only: false },
          onListening,
        );
      }
    });
  }

  private onServerError(error: SystemError): void {
    const action = classifyAcceptError(error.code);
    if (error.syscall === 'accept' && action === 'retry') {
      this.retriesByErrno[String(error.errno)] = (this.retriesByErrno[String(error.errno)] ?? 0) + 1;
      this.sink.onRetry(error);
    } else if (error.syscall === 'accept' && action === 'pause') {
      this.pauses++;
      this.sink.onPause(error, 0);
    } else {
      this.close();
      this.sink.onFatal(error);
    }
  }

  address(): net.AddressInfo | null {
    const address = this.server.address();
    return address !== null && typeof address === 'object' ? address : null;
  }

  counters(): AcceptCounters {
    return { accepted: this.accepted, pauses: this.pauses, retriesByErrno: { ...this.retriesByErrno } };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // net.Server.close() closes the listening handle now; it only waits for connections,
    // which the listener tracks itself.
    if (this.listening) this.server.close();
  }

  ref(): void {
    this.server.ref();
  }

  unref(): void {
    this.server.unref();
  }
}
