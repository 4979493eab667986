#include "platform.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ntl {
namespace {

bool SetCloexec(int fd) {
  int flags = fcntl(fd, F_GETFD);
  return flags != -1 && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != -1;
}

#if !NTL_LINUX_CALLS
// Closes `fd` keeping errno, for a failure path that must report the call that failed.
void CloseKeepingErrno(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

// The descriptors of every SCM_RIGHTS message in `message`, each passed to `visit(fd)` (which
// returns false to stop).
template <typename Visit>
void ForEachReceived(msghdr* message, Visit visit) {
  for (cmsghdr* header = CMSG_FIRSTHDR(message); header != nullptr; header = CMSG_NXTHDR(message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* cursor = CMSG_DATA(header);
    for (size_t i = 0; i < count; i++) {
      int fd;
      std::memcpy(&fd, cursor + i * sizeof(int), sizeof fd);
      if (!visit(fd)) return;
    }
  }
}
#endif

}  // namespace

bool SetNonBlockingCloexec(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) return false;
  return SetCloexec(fd);
}

int OpenSocket(int family, int type, bool non_blocking) {
#if NTL_LINUX_CALLS
  return socket(family, type | SOCK_CLOEXEC | (non_blocking ? SOCK_NONBLOCK : 0), 0);
#else
  int fd = socket(family, type, 0);
  if (fd == -1) return -1;
  if (!(non_blocking ? SetNonBlockingCloexec(fd) : SetCloexec(fd))) {
    CloseKeepingErrno(fd);
    return -1;
  }
  return fd;
#endif
}

int AcceptSocket(int listen_fd, sockaddr* peer, socklen_t* peer_length) {
#if NTL_LINUX_CALLS
  return accept4(listen_fd, peer, peer_length, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
  int fd = accept(listen_fd, peer, peer_length);
  if (fd == -1) return -1;
  if (!SetNonBlockingCloexec(fd)) {
    CloseKeepingErrno(fd);
    return -1;
  }
#ifdef SO_NOSIGPIPE
  // macOS has no MSG_NOSIGNAL for the writes Node makes on this socket: the socket says it.
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof on) == -1) {
    CloseKeepingErrno(fd);
    return -1;
  }
#endif
  return fd;
#endif
}

ssize_t ReceiveMessage(int fd, msghdr* message) {
#if NTL_LINUX_CALLS
  return recvmsg(fd, message, MSG_CMSG_CLOEXEC);
#else
  ssize_t received = recvmsg(fd, message, 0);
  if (received == -1) return -1;
  int failure = 0;
  ForEachReceived(message, [&failure](int received_fd) {
    if (!SetCloexec(received_fd)) failure = errno;
    return failure == 0;
  });
  if (failure == 0) return received;
  ForEachReceived(message, [](int received_fd) {
    close(received_fd);
    return true;
  });
  message->msg_controllen = 0;
  errno = failure;
  return -1;
#endif
}

int OpenPipe(int fds[2]) {
#if NTL_LINUX_CALLS
  return pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0 ? 0 : errno;
#else
  if (pipe(fds) != 0) return errno;
  for (int i = 0; i < 2; i++) {
    if (!SetNonBlockingCloexec(fds[i])) {
      int err = errno;
      close(fds[0]);
      close(fds[1]);
      fds[0] = fds[1] = -1;
      return err;
    }
  }
  return 0;
#endif
}

}  // namespace ntl
