// Creating (or adopting) the listening socket. Knows nothing of the event loop or of JS.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace ntl {

struct ListenResult {
  int fd = -1;     // owned by the caller on success
  int err = 0;     // errno on failure
  const char* syscall = nullptr;  // which call failed
  int family = 0;  // with EAFNOSUPPORT from PrepareAdoptedSocket: the socket's address family
};

// Binds a non-blocking, close-on-exec, SO_REUSEADDR stream socket to a numeric address
// (already resolved by the caller) and listens with `backlog`.
ListenResult OpenListenSocket(int family, const std::string& numeric_address, int port, int backlog);

// Checks that `fd` is a listening TCP socket (a listening stream socket of family AF_INET or
// AF_INET6) and makes it non-blocking and close-on-exec. Anything else fails with the
// errno and call that found it: EINVAL from `listen` (not listening), ENOTSOCK from
// `getsockopt` (not a stream socket), EAFNOSUPPORT from `getsockname` with `family` set (an
// AF_UNIX socket, say: the listener's addresses assume IP).
// Ownership of `fd` does not change here, and a rejected fd is left exactly as it was.
ListenResult PrepareAdoptedSocket(int fd);

struct LocalAddress {
  int err = 0;
  int family = 0;  // 4 or 6
  std::string address;
  int port = 0;
};

LocalAddress GetLocalAddress(int fd);

// A peer address from accept() as text (inet_ntop), its port and family (4 or 6); err is
// EAFNOSUPPORT for any other family.
LocalAddress FormatAddress(const sockaddr_storage& storage);

// accept() on a non-blocking listening socket, with the accepted socket non-blocking and
// close-on-exec (platform.h: accept4 on Linux, accept + fcntl elsewhere). Returns fd or -1 with
// errno.
// `peer`, when given, receives the peer's address from the same call (no getpeername()).
int AcceptNonBlocking(int listen_fd, sockaddr_storage* peer = nullptr);

// TCP_DEFER_ACCEPT on a listening socket (Linux): a connection is not ready to accept until
// its first bytes arrive (or `seconds` pass). Returns 0, or the errno; ENOPROTOOPT on systems
// without the option, and in a portable build (platform.h).
int SetDeferAccept(int fd, int seconds);

}  // namespace ntl
