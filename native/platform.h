// The system calls the addon uses beyond POSIX, in one place. Each Linux-only call has a
// portable path, used where the call is missing (macOS, for one) and, when the build defines
// NTL_FORCE_PORTABLE (NTL_FORCE_PORTABLE=1 in the environment of node-gyp, or
// -DNTL_FORCE_PORTABLE=ON for cmake-js), on Linux too: that is how CI runs the portable paths
// and not only compiles them (scripts/test-portable.sh).
//
// | Linux                         | portable path                                            |
// | socket(SOCK_NONBLOCK|CLOEXEC) | socket() then fcntl O_NONBLOCK, FD_CLOEXEC               |
// | accept4(SOCK_NONBLOCK|CLOEXEC)| accept() then fcntl, and SO_NOSIGPIPE where it exists    |
// | recvmsg(MSG_CMSG_CLOEXEC)     | recvmsg() then FD_CLOEXEC on every descriptor received   |
// | pipe2(O_NONBLOCK|O_CLOEXEC)   | pipe() then fcntl                                        |
// | TCP_INFO (accept queue length)| none: the length is unknown (accept_queue.cc), so the    |
// |                               | acceptor drains to EAGAIN and maxQueuedConnections sheds  |
// |                               | nothing                                                  |
// | TCP_DEFER_ACCEPT              | none: ENOPROTOOPT (listen_socket.cc), which the listener |
// |                               | ignores                                                  |
// | epoll: one set for the hello  | a uv_poll handle per waiting connection (wait_set.h)     |
// | peeker's waits (wait_set.h)   |                                                          |
//
// The portable paths set the flags a moment after the descriptor exists: a fork() and exec()
// by another thread in between would inherit it. Node does not fork, so that window is a
// concern only for a host that does.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#if defined(__linux__) && !defined(NTL_FORCE_PORTABLE)
#define NTL_LINUX_CALLS 1
#else
#define NTL_LINUX_CALLS 0
#endif

namespace ntl {

// False in a build that takes the portable paths (macOS, or NTL_FORCE_PORTABLE).
constexpr bool kLinuxCalls = NTL_LINUX_CALLS != 0;

// The flags for send()/sendmsg() that keep a write to a closed peer from raising SIGPIPE (Node
// ignores SIGPIPE, but an embedder may not): MSG_NOSIGNAL where the system has it, else 0 (then
// SO_NOSIGPIPE on the socket does it, as AcceptSocket sets it).
#ifdef MSG_NOSIGNAL
constexpr int kNoSignal = MSG_NOSIGNAL;
#else
constexpr int kNoSignal = 0;
#endif

// Sets O_NONBLOCK and FD_CLOEXEC on `fd`; false with errno set.
bool SetNonBlockingCloexec(int fd);

// A close-on-exec socket, non-blocking when `non_blocking`; the fd, or -1 with errno set.
int OpenSocket(int family, int type, bool non_blocking);

// accept() with the accepted socket non-blocking and close-on-exec; the fd, or -1 with errno
// set (a socket the portable path could not set up is closed, never returned).
int AcceptSocket(int listen_fd, sockaddr* peer, socklen_t* peer_length);

// recvmsg() with every descriptor received (SCM_RIGHTS) close-on-exec. The bytes received, or
// -1 with errno set; when setting the flag fails, every descriptor received is closed and the
// message's control data emptied before -1 is returned, so the caller has nothing to close.
ssize_t ReceiveMessage(int fd, msghdr* message);

// A non-blocking, close-on-exec pipe: 0 with fds[0] (read) and fds[1] (write), or the errno
// (and nothing open).
int OpenPipe(int fds[2]);

}  // namespace ntl
