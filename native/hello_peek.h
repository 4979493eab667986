// The ClientHello stage of a TLS connection, with no JS running while it waits: the accepted
// descriptor is polled until its receive queue holds the whole ClientHello, which is read with
// recv(MSG_PEEK) (never consumed) and parsed (native/hello_parse.h); JS is then called once,
// with the server name and the ALPN choice, and opens its TLSSocket on the descriptor, whose
// OpenSSL reads the client's bytes as they were sent.
//
// Waiting does not spin although the poll is level-triggered: SO_RCVLOWAT is set to the bytes
// the parse needs next (the end of the record being received, or the next record's header), so
// the socket turns readable only when they are there, or on the client's FIN, a reset, or a
// receive queue the kernel will not fill further. A wake that brings no new byte ends the wait
// on a FIN or a reset: the descriptor goes to OpenSSL unparsed, as does anything the parser
// cannot make sense of. On a full queue (a hello larger than the queue, native/hello_take.h) the
// bytes are read off the socket from then on, parsed there, and handed to JS, which puts them
// back in front of the stream. SO_RCVLOWAT is put back to 1 before JS gets the descriptor.
//
// Descriptor ownership: watch(fd) moves `fd` to this object (if watch throws, it stays the
// caller's, untouched). The callback moves it back to JS, which must then close it or open a
// socket on it (reading `taken` first). cancel(token) and the environment's teardown close it
// here. Memory per waiting connection: one small struct; the peek buffer is one per thread, the
// bytes stay in the kernel (but for a hello being taken: at most kMaxHelloStreamBytes).
#pragma once

#include <napi.h>

namespace ntl {

// Behind a PROXY balancer the same wait first frames the PROXY header (native/proxy_frame.h)
// and reads exactly its bytes; JS parses them, then watches the descriptor again for the hello.
//
// new HelloPeeker(alpnLists: Buffer[], onHello, onHeader)
//   alpnLists: up to 4 lists of the server's protocols (ALPN wire format, each name
//   length-prefixed); for each, onHello reports the index of the first protocol in the client's
//   list that it holds (the client's preference wins), or -1.
//   onHello(token, verdict, servername: string | undefined, errno, taken: Buffer | undefined,
//           ...choices: number[])
//   verdict: 1 parsed; 0 not (the descriptor goes to OpenSSL as it is); -1 not, and no byte came
//   before the client's FIN (errno 0) or reset (errno set).
//   servername is the latin1 text of the host_name bytes, as Node gives it; errno is the
//   socket's error the peek met (reading it clears it, so the socket's reader would not), or 0;
//   taken: the stream's first bytes, read off the socket (a hello the queue would not hold),
//   which whoever reads the descriptor next must read first; undefined when nothing was read.
//   onHeader(token, header: Buffer | undefined, errno, helloParsed?: 1, servername, ...choices):
//   for a header wait; `header` is the header's bytes, read off the socket (the hello stays
//   queued), or undefined when the end of the header was not found (the client's FIN, or a queue
//   that stopped growing; nothing was read: JS reads the header itself), or with errno, the
//   socket's error. When the whole ClientHello was queued behind the header, the same peek
//   parsed it: helloParsed is 1, and servername and choices are as onHello's, so JS need not
//   watch the descriptor again. Otherwise those arguments are absent.
// watch(fd, token: 0..2^31-1, proxyVersions?: 0..3): undefined; with proxyVersions (bit 0
//   version 1, bit 1 version 2) it waits for a PROXY header, else for the hello. The callback
//   may run before it returns (the bytes were there already). Throws (fd untouched, still the
//   caller's) if the descriptor cannot be polled.
// watchUnlessParsed(fd, token): watch(fd, token) for a hello, except when the whole ClientHello
//   is queued already and parses, with no error and nothing read off the socket: then nothing is
//   taken, no callback runs, and it returns [servername | undefined, ...choices] (as onHello's);
//   `fd` is still the caller's. Otherwise undefined, as watch().
// cancel(token): true if it was waiting; its descriptor is closed.
// close(): cancels every wait; later watch() calls throw.
class HelloPeeker;
Napi::Function DefineHelloPeeker(Napi::Env env);

}  // namespace ntl
