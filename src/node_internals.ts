// Every Node internal the package relies on, in one place: each is probed once, lazily (the
// first time it is needed, or by nodeInternals()), and each has a fallback that still serves
// the connection, at some cost. nodeInternals() reports which are in use and which fell back
// (README "Node internals"); a fallback is also reported once as a process warning
// (code NTL_NODE_INTERNAL_FALLBACK), so that a Node upgrade that removes one is noticed.
//
// | internal             | what it saves or does                                   | fallback                                       |
// | tcpHandle            | TCP handle constructor: wraps a descriptor, 3 syscalls less | new net.Socket({ fd })                      |
// | tlsLayerOpen         | TLSWrap's passed-on open() + writable `connecting`: one socket per TLS connection | a TLSSocket over a net.Socket |
// | peernameCache        | net.Socket's `_peername` cache: no getpeername() per connection | Node asks the handle (getpeername)       |
// | releaseControl       | TLSSocket._releaseControl(): TLS errors after setup reach the socket | the internal '_tlsError' event     |
// | secureConnecting     | a writable `secureConnecting`: HTTP/2 serves a hand-built socket | left as Node computes it               |
// | ticketKeys           | SecureContext's setTicketKeys(): one key for all workers | each worker's own keys (no cross-worker resumption) |
// | httpConnectionTracking | _http_server's setupConnectionsTracking: headersTimeout/requestTimeout on routed connections | not enforced |
// | tlsLayerAlpn         | TLSWrap's setALPNProtocols() after the socket is made: the TLSSocket is built while the hello is on its way | built once the hello is in |
import net from 'node:net';
import tls from 'node:tls';
import { debug } from './diagnostics.js';

export type NodeInternalName =
  | 'tcpHandle'
  | 'tlsLayerOpen'
  | 'peernameCache'
  | 'releaseControl'
  | 'secureConnecting'
  | 'ticketKeys'
  | 'httpConnectionTracking'
  | 'tlsLayerAlpn';

/** 'internal': the internal is there and used; 'fallback': it is missing or not as expected. */
export type NodeInternalUse = 'internal' | 'fallback';

/** The part of Node's TCP handle (tcp_wrap) used here. */
export interface TcpHandle {
  /** uv_tcp_open: 0, or a negative errno (the descriptor is then not the handle's). */
  open(fd: number): number;
  close(): void;
}

export type TcpHandleConstructor = new (type: number) => TcpHandle;

/** What lib/_http_server.js exports for node:https and node:http2, used for routed connections. */
export interface HttpServerInternals {
  setupConnectionsTracking: (this: net.Server) => void;
  kConnectionsCheckingInterval: symbol;
}

/** A peer in the shape of net.Socket's `_peername`. */
export interface PeerName {
  address: string;
  family: string;
  port: number;
}

interface Probe<T> {
  value?: T;
  probed: boolean;
}

const probes: { [K in NodeInternalName]: Probe<unknown> } = {
  tcpHandle: { probed: false },
  tlsLayerOpen: { probed: false },
  peernameCache: { probed: false },
  releaseControl: { probed: false },
  secureConnecting: { probed: false },
  ticketKeys: { probed: false },
  httpConnectionTracking: { probed: false },
  tlsLayerAlpn: { probed: false },
};

function probed<T>(name: NodeInternalName, probe: () => T | null): T | null {
  const slot = probes[name] as Probe<T | null>;
  if (!slot.probed) {
    slot.probed = true;
    let value: T | null;
    try {
      value = probe();
    } catch (error) {
      debug('probing %s threw: %s', name, (error as Error).message);
      value = null;
    }
    slot.value = value;
    if (value === null) {
      debug('Node internal %s not usable here: using its fallback', name);
      process.emitWarning(`Node internal ${name} is not usable on Node ${process.version}: native-tls-listener uses its fallback`, {
        code: 'NTL_NODE_INTERNAL_FALLBACK',
      });
    }
  }
  return slot.value ?? null;
}

/** A TLSSocket with nothing under it (its own TCP handle, no descriptor), for probing. */
function bareTlsSocket(): tls.TLSSocket {
  // Node's types want a socket; without one, the TLSSocket makes its own TCP handle.
  return new tls.TLSSocket(undefined as unknown as net.Socket, {});
}

/**
 * The constructor of Node's TCP handle. connect() makes a socket's handle at once (libuv opens
 * no descriptor until it binds or connects), and, for an IP address, connects on a later tick
 * only if the socket is still connecting: destroyed first, the probe makes no system call.
 */
export function tcpHandleConstructor(): TcpHandleConstructor | null {
  return probed('tcpHandle', () => {
    const probe = new net.Socket();
    probe.on('error', () => undefined);
    probe.connect({ port: 9, host: '127.0.0.1' });
    const handle = (probe as unknown as { _handle?: object | null })._handle;
    probe.destroy();
    const constructor = handle?.constructor as (TcpHandleConstructor & { name?: string; prototype?: Partial<TcpHandle> }) | undefined;
    if (constructor?.name !== 'TCP' || typeof constructor.prototype?.open !== 'function') return null;
    return constructor;
  });
}

/**
 * Whether a TLSSocket made without a socket can be opened on an accepted descriptor: its TLS
 * layer passes open() on to its TCP handle, and its `connecting` (true: Node expects
 * tls.connect() to connect it) can be cleared. src/tls/direct_tls_socket.ts.
 */
export function tlsLayerOpenWorks(): boolean {
  return (
    probed('tlsLayerOpen', () => {
      const socket = bareTlsSocket();
      try {
        const layer = (socket as unknown as { _handle?: { open?: unknown } | null })._handle;
        if (typeof layer?.open !== 'function') return null;
        markConnected(socket);
        return socket.connecting === false ? true : null;
      } finally {
        socket.destroy();
      }
    }) === true
  );
}

/** uv_tcp_open through a TLSSocket's TLS layer: 0, a negative errno, or null when nothing took it. */
export function openUnderTlsLayer(socket: tls.TLSSocket, fd: number): number | null {
  const layer = (socket as unknown as { _handle?: { open?: (fd: number) => unknown } | null })._handle;
  const err = typeof layer?.open === 'function' ? layer.open(fd) : undefined;
  return typeof err === 'number' ? err : null;
}

/** The part of Node's TLS layer (TLSWrap) that sets a server socket's protocols. */
interface AlpnLayer {
  setALPNProtocols(wire: Buffer): void;
}

function alpnLayer(socket: tls.TLSSocket): AlpnLayer | null {
  const layer = (socket as unknown as { _handle?: Partial<AlpnLayer> | null })._handle;
  return typeof layer?.setALPNProtocols === 'function' ? (layer as AlpnLayer) : null;
}

/**
 * Whether a server TLSSocket's protocols can be set after it is made, before its handshake
 * begins: its TLS layer's setALPNProtocols() (what TLSSocket's constructor calls with
 * ALPNProtocols) keeps them per socket. src/tls/prepared_sockets.ts.
 */
export function tlsLayerAlpnWorks(): boolean {
  return (
    probed('tlsLayerAlpn', () => {
      const socket = new tls.TLSSocket(undefined as unknown as net.Socket, { isServer: true });
      try {
        const layer = alpnLayer(socket);
        if (layer === null) return null;
        layer.setALPNProtocols(Buffer.from([2, 0x68, 0x32]));
        return true;
      } finally {
        socket.destroy();
      }
    }) === true
  );
}

/** Offers `wire` (ALPN wire format) to the client of a server socket whose handshake has not begun. */
export function setServerAlpn(socket: tls.TLSSocket, wire: Buffer): void {
  const layer = alpnLayer(socket);
  if (layer === null) throw new Error('this Node cannot set a TLS socket\'s protocols after it is made');
  layer.setALPNProtocols(wire);
}

/** The descriptor is connected already: lets a socket made "connecting" read and write. */
export function markConnected(socket: net.Socket): void {
  (socket as unknown as { connecting: boolean }).connecting = false;
}

/**
 * Whether net.Socket answers remoteAddress/remotePort from `_peername` when it is set (lib/net.js
 * `_getpeername`), so that the peer accept() gave can be handed over without a getpeername().
 */
function peernameCacheWorks(): boolean {
  return (
    probed('peernameCache', () => {
      const socket = new net.Socket();
      (socket as unknown as { _peername?: PeerName })._peername = { address: '192.0.2.1', family: 'IPv4', port: 9 };
      const works = socket.remoteAddress === '192.0.2.1' && socket.remotePort === 9;
      socket.destroy();
      return works ? true : null;
    }) === true
  );
}

/** Gives `socket` its peer as accept() read it; without the cache, Node asks the handle when asked. */
export function primePeerName(socket: net.Socket, peer: PeerName): void {
  if (!peernameCacheWorks()) return;
  const cache = socket as unknown as { _peername?: PeerName | null };
  // Only a socket that has not looked its peer up yet: an adopter may have done so already.
  if (cache._peername === undefined || cache._peername === null) cache._peername = peer;
}

/**
 * What tls.Server does for its sockets after 'secure' (lib/_tls_wrap.js `_releaseControl`):
 * TLS errors after setup then reach the socket's 'error'. Without the method, the errors still
 * arrive on the internal '_tlsError' event, and end the socket from there.
 */
function releaseControlMethod(): ((this: tls.TLSSocket) => boolean) | null {
  return probed('releaseControl', () => {
    const method = (tls.TLSSocket.prototype as unknown as { _releaseControl?: unknown })._releaseControl;
    return typeof method === 'function' ? (method as (this: tls.TLSSocket) => boolean) : null;
  });
}

export function releaseTlsControl(socket: tls.TLSSocket): void {
  const release = releaseControlMethod();
  if (release !== null) {
    release.call(socket);
    return;
  }
  socket.on('_tlsError', (error: Error) => socket.destroy(error));
}

/**
 * tls.Server clears `secureConnecting` on its sockets once secure, and Node's HTTP/2 server
 * waits for it to be false: a hand-built server socket must clear it too. Where it cannot be
 * written, Node computes it and nothing is done.
 */
export function markSecure(socket: tls.TLSSocket): void {
  if (secureConnectingWritable()) (socket as unknown as { secureConnecting: boolean }).secureConnecting = false;
}

function secureConnectingWritable(): boolean {
  return (
    probed('secureConnecting', () => {
      const probe = bareTlsSocket();
      try {
        (probe as unknown as { secureConnecting: boolean }).secureConnecting = false;
        return (probe as unknown as { secureConnecting: unknown }).secureConnecting === false ? true : null;
      } finally {
        probe.destroy();
      }
    }) === true
  );
}

type SetTicketKeys = (this: object, keys: Buffer) => void;

/**
 * Sets `keys` (48 bytes) as the session ticket keys of `context`; false where the context has
 * no setTicketKeys() (Node's `ticketKeys` option uses the same method: no other way exists).
 */
function setTicketKeysMethod(): SetTicketKeys | null {
  return probed<SetTicketKeys>('ticketKeys', () => {
    const native = (tls.createSecureContext() as unknown as { context?: { setTicketKeys?: unknown } }).context;
    return typeof native?.setTicketKeys === 'function' ? (native.setTicketKeys as SetTicketKeys) : null;
  });
}

export function setContextTicketKeys(context: tls.SecureContext, keys: Uint8Array): boolean {
  const method = setTicketKeysMethod();
  const native = (context as unknown as { context?: object }).context;
  if (method === null || native === undefined) return false;
  method.call(native, Buffer.from(keys));
  return true;
}

/** lib/_http_server.js's connection tracking (node:https and node:http2 use the same export). */
export function httpServerInternals(): HttpServerInternals | null {
  return probed('httpConnectionTracking', () => {
    const exported = process.getBuiltinModule('node:_http_server') as Partial<HttpServerInternals> | undefined;
    const setupConnectionsTracking = exported?.setupConnectionsTracking;
    const kConnectionsCheckingInterval = exported?.kConnectionsCheckingInterval;
    if (typeof setupConnectionsTracking !== 'function' || typeof kConnectionsCheckingInterval !== 'symbol') return null;
    return { setupConnectionsTracking, kConnectionsCheckingInterval };
  });
}

/** The descriptor of a socket's or a server's libuv handle (Unix), or null where Node hides it. */
export function handleDescriptor(owner: net.Socket | net.Server): number | null {
  const handle = (owner as unknown as { _handle?: { fd?: unknown } | null })._handle;
  return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : null;
}

/**
 * Which Node internals this process uses and which fell back, probing any not probed yet.
 * On this thread only: a worker thread probes its own.
 */
export function nodeInternals(): Record<NodeInternalName, NodeInternalUse> {
  const use = (value: unknown): NodeInternalUse => (value === null || value === false ? 'fallback' : 'internal');
  return {
    tcpHandle: use(tcpHandleConstructor()),
    tlsLayerOpen: use(tlsLayerOpenWorks()),
    peernameCache: use(peernameCacheWorks()),
    releaseControl: use(releaseControlMethod()),
    secureConnecting: use(secureConnectingWritable()),
    ticketKeys: use(setTicketKeysMethod()),
    httpConnectionTracking: use(httpServerInternals()),
    tlsLayerAlpn: use(tlsLayerAlpnWorks()),
  };
}
