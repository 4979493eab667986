#include "load_shedding.h"

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "accept_queue.h"
#include "listen_socket.h"

namespace ntl {
namespace {

// Nanoseconds of CPU this thread has used, or 0 when the clock cannot be read.
uint64_t ThreadCpuNs() {
  struct timespec now {};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now) != 0) return 0;
  return static_cast<uint64_t>(now.tv_sec) * 1000000000ULL + static_cast<uint64_t>(now.tv_nsec);
}

// Closes an accepted socket with a reset: SO_LINGER with a zero timeout makes close() send RST
// and drop the socket at once (no FIN, no TIME_WAIT, the unread ClientHello discarded), so
// the client learns at once that it was turned away (ECONNRESET) rather than reading an
// orderly end. Should the option be refused, the plain close still ends the connection (Linux
// resets it anyway when unread data is discarded).
void CloseWithReset(int fd) {
  struct linger reset {};
  reset.l_onoff = 1;
  reset.l_linger = 0;
  (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  // close() releases the descriptor even when it reports an error (EINTR included on Linux):
  // there is nothing to retry, and retrying could close a descriptor another thread just got.
  (void)close(fd);
}

}  // namespace

ShedRound ShedBeyond(int listen_fd, int64_t keep) {
  ShedRound round;
  int queued = AcceptQueueLength(listen_fd);
  if (queued < 0) {
    round.unknown_queue = true;
    return round;
  }
  if (queued <= keep) return round;
  uint64_t excess = static_cast<uint64_t>(queued - keep);
  uint64_t cpu_before = ThreadCpuNs();
  while (round.shed < excess) {
    int fd = AcceptNonBlocking(listen_fd);
    if (fd < 0) {
      // EINTR: try again; ECONNABORTED: that connection left the queue by itself.
      if (errno == EINTR || errno == ECONNABORTED) {
        if (errno == ECONNABORTED) excess--;
        continue;
      }
      // EAGAIN (clients gone since the count), out of descriptors, anything else: stop here.
      break;
    }
    CloseWithReset(fd);
    round.shed++;
  }
  uint64_t cpu_after = round.shed > 0 ? ThreadCpuNs() : 0;
  if (cpu_before != 0 && cpu_after >= cpu_before) round.cpu_ns = cpu_after - cpu_before;
  return round;
}

}  // namespace ntl
