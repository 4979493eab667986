// Wrapping an accepted descriptor the way net.Server wraps the connections it accepts: a TCP
// handle opened on the descriptor, given to net.Socket as its `handle`.
//
// `new net.Socket({ fd })` first asks libuv what the descriptor is (uv_guess_handle: fstat,
// getsockopt(SO_TYPE), getsockname): three system calls per connection that a descriptor
// accept()ed from a TCP listening socket does not need. Node exports no constructor for its TCP
// handle, so the first descriptor is wrapped that way and the constructor is taken from the
// socket it made; if that ever is not the TCP handle this expects, every descriptor keeps
// taking the `{ fd }` path.
import net from 'node:net';
import { systemError } from '../errors.js';

/** The part of Node's TCP handle (tcp_wrap) used here. */
interface TcpHandle {
  /** uv_tcp_open: 0, or a negative errno (the descriptor is then not the handle's). */
  open(fd: number): number;
  close(): void;
}

type TcpHandleConstructor = new (type: number) => TcpHandle;

/** tcp_wrap's TCPConstants.SOCKET: a connection's handle, not a server's. */
const TCP_SOCKET = 0;

/** undefined until the first socket shows it; null when it is not usable. */
let tcpHandle: TcpHandleConstructor | null | undefined;

function learnTcpHandle(socket: net.Socket): TcpHandleConstructor | null {
  const handle = (socket as unknown as { _handle?: object | null })._handle;
  const constructor = handle?.constructor as (TcpHandleConstructor & { name?: string; prototype?: Partial<TcpHandle> }) | undefined;
  if (constructor?.name !== 'TCP' || typeof constructor.prototype?.open !== 'function') return null;
  return constructor;
}

/**
 * A net.Socket that owns `fd`, an accepted TCP connection. Throws, leaving `fd` open and not
 * owned by any handle, when the descriptor cannot be opened.
 */
export function wrapAcceptedDescriptor(fd: number): net.Socket {
  if (tcpHandle === undefined) {
    const socket = new net.Socket({ fd, readable: true, writable: true });
    tcpHandle = learnTcpHandle(socket);
    return socket;
  }
  if (tcpHandle === null) return new net.Socket({ fd, readable: true, writable: true });
  const handle = new tcpHandle(TCP_SOCKET);
  const err = handle.open(fd);
  if (err !== 0) {
    // The handle never had the descriptor: closing it leaves the descriptor as it was.
    handle.close();
    throw systemError(-err, 'open');
  }
  return new net.Socket({ handle, readable: true, writable: true } as net.SocketConstructorOpts);
}
