// Load shedding while accepting is paused at an admission limit (maxConnections,
// maxPendingHandshakes): the kernel's accept queue keeps filling, and every client in it waits
// longer the longer the queue is, so under sustained overload the tail of those eventually
// served grows without bound. With a bound of `keep` queued connections, the ones beyond it
// are accepted here, oldest first (accept() takes the queue's head), and reset at once, before
// any JS: the clients that have waited longest are the ones turned away, and whoever is served
// waited behind at most `keep` others.
//
// The queue's length is read with TCP_INFO (native/accept_queue.h); where the platform does not
// say (macOS), nothing is shed.
#pragma once

#include <cstdint>

namespace ntl {

// How often the queue is checked while accepting is paused at a limit, by the single-thread
// acceptor (a libuv timer) and by the workers' accept thread (a timed wait) alike: what arrives
// between two checks is what the queue can exceed its bound by (a few connections at thousands
// per second), and a check is one getsockopt().
constexpr uint64_t kShedCheckMs = 2;

struct ShedRound {
  // Connections accepted and reset in this round.
  uint64_t shed = 0;
  // CPU time this thread spent on them (accept, setsockopt, close and the RST the kernel sends
  // from the close), or 0 when the thread's CPU clock could not be read.
  uint64_t cpu_ns = 0;
  // The queue's length could not be read: shedding cannot work on this socket/platform.
  bool unknown_queue = false;
};

// Sheds the connections queued on `listen_fd` beyond `keep`. An accept() error other than a
// connection aborted in the queue ends the round early (the next round tries again); what the
// error means for the listener is the accept loop's business once it resumes.
ShedRound ShedBeyond(int listen_fd, int64_t keep);

}  // namespace ntl
