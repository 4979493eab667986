// The TLSSocket options of each connection: the context that serves it and the protocol it
// offers, from what its ClientHello decided; for a hello not read first, the callbacks that
// let OpenSSL's own reading choose them. They depend on the contexts, on whether the SNI
// context serves and on the protocol offered, nothing else: built once per set of contexts and
// choice (callbacks included), not per connection. TLSSocket copies what it is given.
import type tls from 'node:tls';
import { chooseAlpnProtocol, wireProtocolLists } from './alpn.js';
import type { HelloDecision, ServingContexts } from './tls_setup.js';

interface OptionsCache {
  contexts: Readonly<ServingContexts>;
  plain: tls.TLSSocketOptions | undefined;
  byChoice: [Map<string, tls.TLSSocketOptions>, Map<string, tls.TLSSocketOptions>];
}

export class SocketOptions {
  /** Each of the server's protocols alone, in ALPN wire format: what a decided socket offers. */
  private readonly alpnLists: Map<string, Buffer>;
  /**
   * The options for the contexts they were built for: `plain` when no ClientHello was read
   * first; else by context (0 primary, 1 SNI) and offered protocol ('' for none).
   */
  private cache: OptionsCache | undefined;

  constructor(
    private readonly serverAlpn: readonly string[],
    /** Those offered to clients served with sniContext, when not all of serverAlpn. */
    private readonly sniAlpn: readonly string[] | undefined,
    private readonly requestCert: boolean,
  ) {
    this.alpnLists = wireProtocolLists(serverAlpn);
  }

  /** The protocols offered to a client that sent `servername`. */
  offeredTo(servername: string | undefined, contexts: Readonly<ServingContexts>): readonly string[] {
    return servername !== undefined && contexts.sniContext ? (this.sniAlpn ?? this.serverAlpn) : this.serverAlpn;
  }

  /** `protocol` alone in ALPN wire format (undefined for none), for a socket made before its hello came. */
  wire(protocol: string | undefined): Buffer | undefined {
    return protocol !== undefined ? this.alpnLists.get(protocol) : undefined;
  }

  /** The options for a connection that `hello` decided (undefined: no hello was read first). */
  of(hello: HelloDecision | undefined, contexts: Readonly<ServingContexts>): tls.TLSSocketOptions {
    let cache = this.cache;
    if (cache?.contexts !== contexts) {
      cache = { contexts, plain: undefined, byChoice: [new Map(), new Map()] };
      this.cache = cache;
    }
    if (hello === undefined) {
      cache.plain ??= this.build(undefined, contexts);
      return cache.plain;
    }
    const choices = cache.byChoice[hello.servername !== undefined && contexts.sniContext ? 1 : 0];
    const protocol = hello.protocol ?? '';
    let options = choices.get(protocol);
    if (options === undefined) {
      options = this.build(hello, contexts);
      choices.set(protocol, options);
    }
    return options;
  }

  private build(hello: HelloDecision | undefined, contexts: Readonly<ServingContexts>): tls.TLSSocketOptions {
    const { context, sniContext } = contexts;
    const options: tls.TLSSocketOptions = {
      isServer: true,
      secureContext: hello?.servername !== undefined && sniContext ? sniContext : context,
      requestCert: this.requestCert,
      // Chains are judged by the original's rules after the handshake, not by OpenSSL's store.
      rejectUnauthorized: false,
    };
    if (hello) {
      const wire = this.wire(hello.protocol);
      if (wire) options.ALPNProtocols = wire;
      return options;
    }
    if (sniContext) {
      // Node calls this only when the client sent a server name.
      options.SNICallback = (_servername, callback) => callback(null, sniContext);
    }
    // A hello not parsed (too large for the JS reader, or bytes the parser cannot make sense of,
    // such as an empty record before it) is OpenSSL's to answer in full, but the protocol is
    // chosen as for a parsed one: the client's first choice among those offered to the
    // credential that serves it (sniAlpn for an SNI client, which the HTTP route can speak).
    // OpenSSL's own choice (ALPNProtocols) goes by the server's order and offers an SNI client
    // the whole list, h2 included for an HTTP/1 route. Node calls this only when the client
    // sent ALPN; no overlap is its no_application_protocol alert, as with ALPNProtocols.
    if (this.serverAlpn.length > 0) {
      options.ALPNCallback = ({ servername, protocols }) =>
        // Node's SNI callback serves sniContext for any non-empty name; this follows it.
        chooseAlpnProtocol(protocols, this.offeredTo(servername ? servername : undefined, contexts));
    }
    return options;
  }
}
