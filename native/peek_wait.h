// One wait of the HelloPeeker (native/hello_peek.h): what is known of a waiting connection, and
// the peek that runs on each wake, for a ClientHello (native/hello_parse.h) or a PROXY header
// (native/proxy_frame.h). No N-API here; libuv only for the poll handle the wait lives in.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ntl {

struct PeekSet;  // native/hello_peek.cc
class WaitSet;   // native/wait_set.h

// One connection waiting for its ClientHello. Freed in OnWatchClosed, once libuv is done with it.
struct Watch {
  // How the wait is polled (native/wait_set.h): its own handle on the portable path, its key in
  // the set's epoll instance on Linux.
  uv_poll_t poll;
  WaitSet* wait_set = nullptr;
  uint64_t wait_key = 0;
  PeekSet* set = nullptr;
  int fd = -1;
  uint32_t token = 0;
  // Stream bytes the last peek saw, and the SO_RCVLOWAT set on the socket (1 is the default).
  size_t peeked = 0;
  int lowat = 1;
  // Not 0: this wait is for a PROXY header of these versions (kProxyAccept* bits), not a hello.
  int proxy_versions = 0;
  // Set once the queue would not hold the whole hello (native/hello_take.h): the stream's first
  // bytes, read off the socket, which JS puts back in front of it. Empty otherwise.
  bool taking = false;
  std::vector<uint8_t> taken;
};

struct Outcome {
  // The ClientHello was parsed whole (for a PROXY header wait: the one queued behind the header).
  bool parsed = false;
  // Whether any byte was queued (a client that closes, or resets, having sent nothing after a
  // PROXY header is its balancer's health check: src/proxy/proxy_setup.ts).
  bool saw_bytes = false;
  // The socket's error the peek met (it is consumed by reading it, so JS is told), or 0.
  int err = 0;
  std::string servername;
  bool has_servername = false;
  std::vector<int32_t> choices;
  // A PROXY header wait: whether the header was framed and read, and its bytes.
  bool framed = false;
  std::vector<uint8_t> header;
};

// The server's ALPN lists, each protocol a string.
using AlpnLists = std::vector<std::vector<std::string>>;

enum class PeekResult { kWait, kDone };

// Peeks at what the socket holds and parses it: kDone with `outcome` filled, or kWait with
// SO_RCVLOWAT raised to the bytes needed next. `woken`: called for a poll event, so a peek
// that brings nothing new means the queue will not grow (FIN, reset, full buffer). A PROXY
// header wait (proxy_versions) reads exactly the header once its end is known, and parses the
// ClientHello behind it when the same peek holds it whole.
PeekResult Peek(Watch* watch, bool woken, const AlpnLists& alpn_lists, Outcome& outcome);

// Puts SO_RCVLOWAT back for the socket's reader. Failing, the descriptor still goes to JS: its
// reader then sees data only in bigger amounts, and the handshake timeout bounds that.
void RestoreLowWater(Watch* watch);

// Reads the socket's pending error (a reset) into outcome.err (0 if none). Reading it clears it:
// the socket's reader will not see it, so JS must be told.
void TakeSocketError(int fd, Outcome& outcome);

}  // namespace ntl
