#include "accept_queue.h"

#include "platform.h"

#if NTL_LINUX_CALLS
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstddef>
#endif

namespace ntl {

int AcceptQueueLength(int listen_fd) {
#if NTL_LINUX_CALLS
  // For a socket in LISTEN state the kernel reports the accept queue's length in
  // tcpi_unacked (and its limit in tcpi_sacked); that is what `ss -l` shows as Recv-Q.
  struct tcp_info info {};
  socklen_t length = sizeof info;
  if (getsockopt(listen_fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return -1;
  // A kernel that copied less than the field (none does; the field dates from 2.6) says nothing.
  if (length < offsetof(struct tcp_info, tcpi_unacked) + sizeof info.tcpi_unacked) return -1;
  if (info.tcpi_state != TCP_LISTEN) return -1;
  return static_cast<int>(info.tcpi_unacked);
#else
  (void)listen_fd;
  return -1;
#endif
}

}  // namespace ntl
