// Passing listening sockets between processes over a Unix-domain stream socket (SCM_RIGHTS),
// for an upgrade without dropping a connection. Node cannot send or receive descriptors on an
// arbitrary Unix socket, so these two calls do exactly that and nothing more; the rest of the
// conversation is plain data over net.Socket (src/upgrade/).
//
// Descriptor ownership, written down once:
//  - sendDescriptors: the listening descriptors stay the sender's before, during and after
//    the call. SCM_RIGHTS makes the kernel take its own reference for the message; that
//    reference is "in flight" (owned by the kernel, in the receiving socket's queue) until the
//    receiver's recvmsg installs it as a new descriptor, or until the Unix socket is closed
//    unread, when the kernel drops it. Nothing is closed by this call.
//  - receiveDescriptors: the connection descriptor and every received descriptor belong to the
//    worker thread until the promise resolves; on any failure (connect, timeout, end of
//    stream, truncated control data, a descriptor that is not a listening TCP socket) the
//    worker closes every one of them before rejecting, so a failure leaks nothing. Once the
//    promise resolves, all of them are the caller's (JS), close-on-exec.
#pragma once

#include <napi.h>

namespace ntl {

// sendDescriptors(socketFd, fds: number[], payload: Buffer) -> { sent } | { errno, syscall }
//   `sent` may be short of the payload: the descriptors went with its first byte all the same.
Napi::Value SendDescriptors(const Napi::CallbackInfo& info);

// receiveDescriptors(path: string, timeoutMs: 1..60000)
//   -> Promise<{ socketFd, fds: number[], payload: Buffer }>, rejects with { errno, syscall }
Napi::Value ReceiveDescriptors(const Napi::CallbackInfo& info);

}  // namespace ntl
