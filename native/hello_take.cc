#include "hello_take.h"

#include "hello_parse.h"
#include "platform.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>

#if NTL_LINUX_CALLS
#include <netinet/in.h>
#include <netinet/tcp.h>
#endif

namespace ntl {

bool PeerFinishedSending(int fd) {
#if NTL_LINUX_CALLS
  struct tcp_info info {};
  socklen_t length = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return true;
  if (length < offsetof(struct tcp_info, tcpi_state) + sizeof info.tcpi_state) return true;
  // Only an established connection still receives: a FIN moves it to CLOSE_WAIT.
  return info.tcpi_state != TCP_ESTABLISHED;
#else
  (void)fd;
  return true;
#endif
}

ssize_t TakeQueued(int fd, std::vector<uint8_t>& taken) {
  const size_t held = taken.size();
  if (held >= kMaxHelloStreamBytes) {
    errno = ENOBUFS;
    return -1;
  }
  taken.resize(kMaxHelloStreamBytes);
  ssize_t got;
  do {
    got = recv(fd, taken.data() + held, kMaxHelloStreamBytes - held, MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  const int saved = errno;
  taken.resize(held + (got > 0 ? static_cast<size_t>(got) : 0));
  errno = saved;
  return got;
}

}  // namespace ntl
