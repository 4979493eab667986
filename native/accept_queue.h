// How many connections wait in a listening socket's accept queue, as the kernel counts them.
//
// The acceptor asks after each accepted connection, so that a wake-up with one connection
// pending costs one accept(), not an accept() plus a second one that returns EAGAIN: on
// Linux, reading the count (TCP_INFO, a lock-free copy of two fields for a listening socket)
// is cheaper than a failed accept4(), which allocates a socket and a file before it finds the
// queue empty. libuv's poll is level-triggered, so a connection that arrives after the count
// was read wakes the loop again.
#pragma once

namespace ntl {

// The number of connections ready for accept(), or -1 where the platform does not say (then
// the acceptor drains the queue until accept() returns EAGAIN, as it always did).
int AcceptQueueLength(int listen_fd);

}  // namespace ntl
