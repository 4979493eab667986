#include "listen_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "platform.h"

namespace ntl {
namespace {

ListenResult Fail(int fd, const char* syscall) {
  ListenResult result;
  result.err = errno;
  result.syscall = syscall;
  if (fd >= 0) close(fd);
  return result;
}

}  // namespace

ListenResult OpenListenSocket(int family, const std::string& numeric_address, int port, int backlog) {
  sockaddr_storage storage;
  std::memset(&storage, 0, sizeof storage);
  socklen_t length = 0;
  if (family == 6) {
    auto* addr = reinterpret_cast<sockaddr_in6*>(&storage);
    addr->sin6_family = AF_INET6;
    addr->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, numeric_address.c_str(), &addr->sin6_addr) != 1) {
      errno = EINVAL;
      return Fail(-1, "inet_pton");
    }
    length = sizeof(sockaddr_in6);
  } else {
    auto* addr = reinterpret_cast<sockaddr_in*>(&storage);
    addr->sin_family = AF_INET;
    addr->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, numeric_address.c_str(), &addr->sin_addr) != 1) {
      errno = EINVAL;
      return Fail(-1, "inet_pton");
    }
    length = sizeof(sockaddr_in);
  }

  int fd = OpenSocket(storage.ss_family, SOCK_STREAM, true);
  if (fd == -1) return Fail(-1, "socket");

  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1) return Fail(fd, "setsockopt");
  if (storage.ss_family == AF_INET6) {
    // The system default follows net.ipv6.bindv6only, which is 1 on some hosts (and the BSDs'
    // default): cleared here, as libuv does, so `::` also serves IPv4 clients (as IPv4-mapped
    // addresses), as the original's wildcard listener does.
    int off = 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) == -1) return Fail(fd, "setsockopt");
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&storage), length) == -1) return Fail(fd, "bind");
  if (listen(fd, backlog) == -1) return Fail(fd, "listen");

  ListenResult result;
  result.fd = fd;
  return result;
}

ListenResult PrepareAdoptedSocket(int fd) {
  int accepting = 0;
  socklen_t length = sizeof accepting;
#ifdef SO_ACCEPTCONN
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == -1) return Fail(-1, "getsockopt");
  if (!accepting) {
    errno = EINVAL;
    return Fail(-1, "listen");
  }
#endif
  int type = 0;
  length = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == -1) return Fail(-1, "getsockopt");
  if (type != SOCK_STREAM) {
    errno = ENOTSOCK;
    return Fail(-1, "getsockopt");
  }
  sockaddr_storage local;
  length = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == -1) return Fail(-1, "getsockname");
  if (local.ss_family != AF_INET && local.ss_family != AF_INET6) {
    errno = EAFNOSUPPORT;
    ListenResult refused = Fail(-1, "getsockname");
    refused.family = local.ss_family;
    return refused;
  }
  if (!SetNonBlockingCloexec(fd)) return Fail(-1, "fcntl");
  ListenResult result;
  result.fd = fd;
  return result;
}

LocalAddress GetLocalAddress(int fd) {
  LocalAddress local;
  sockaddr_storage storage;
  socklen_t length = sizeof storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) == -1) {
    local.err = errno;
    return local;
  }
  return FormatAddress(storage);
}

LocalAddress FormatAddress(const sockaddr_storage& storage) {
  LocalAddress local;
  char text[INET6_ADDRSTRLEN] = {0};
  if (storage.ss_family == AF_INET6) {
    const auto* addr = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &addr->sin6_addr, text, sizeof text);
    local.family = 6;
    local.port = ntohs(addr->sin6_port);
  } else if (storage.ss_family == AF_INET) {
    const auto* addr = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &addr->sin_addr, text, sizeof text);
    local.family = 4;
    local.port = ntohs(addr->sin_port);
  } else {
    local.err = EAFNOSUPPORT;
    return local;
  }
  local.address = text;
  return local;
}

int AcceptNonBlocking(int listen_fd, sockaddr_storage* peer) {
  socklen_t peer_length = sizeof(sockaddr_storage);
  sockaddr* peer_address = reinterpret_cast<sockaddr*>(peer);
  socklen_t* peer_length_out = peer != nullptr ? &peer_length : nullptr;
  if (peer != nullptr) peer->ss_family = AF_UNSPEC;
  return AcceptSocket(listen_fd, peer_address, peer_length_out);
}

int SetDeferAccept(int fd, int seconds) {
#if NTL_LINUX_CALLS && defined(TCP_DEFER_ACCEPT)
  if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds) == 0) return 0;
  return errno;
#else
  (void)fd;
  (void)seconds;
  return ENOPROTOOPT;
#endif
}

}  // namespace ntl
