#include "peek_wait.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>

#include "hello_parse.h"
#include "hello_take.h"
#include "proxy_frame.h"

namespace ntl {
namespace {

// The peek buffer: one per thread (each worker thread has its own loop), filled and parsed
// within one call, so no connection keeps bytes here between wakes.
struct PeekBuffers {
  std::vector<uint8_t> stream = std::vector<uint8_t>(kMaxHelloStreamBytes);
  std::vector<uint8_t> scratch;
};

PeekBuffers& ThreadBuffers() {
  thread_local PeekBuffers buffers;
  return buffers;
}

// What the server offers, per list, for the client's ALPN list.
void ChooseProtocols(const AlpnLists& alpn_lists, const HelloView& view, Outcome& outcome) {
  outcome.choices.assign(alpn_lists.size(), -1);
  if (view.alpn == nullptr) return;
  for (size_t list = 0; list < alpn_lists.size(); list++) {
    const auto& offered = alpn_lists[list];
    ForEachAlpnProtocol(view.alpn, view.alpn_length, [&](const uint8_t* name, size_t length) {
      for (size_t i = 0; i < offered.size(); i++) {
        if (offered[i].size() == length && offered[i].compare(0, length, reinterpret_cast<const char*>(name), length) == 0) {
          outcome.choices[list] = static_cast<int32_t>(i);
          return true;
        }
      }
      return false;
    });
  }
}

ssize_t PeekInto(int fd, uint8_t* buffer, size_t size) {
  ssize_t got;
  do {
    got = recv(fd, buffer, size, MSG_PEEK | MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  return got;
}

// Sets SO_RCVLOWAT to `need` stream bytes (the peeks consume none, so it is the whole need);
// false if it cannot, and then the wait ends. The kernel may cap it (half the receive buffer's
// limit); a queue stuck below the need then wakes with nothing new, and the wait ends too.
bool RaiseLowWater(Watch* watch, size_t need) {
  const int lowat = static_cast<int>(need);  // need <= kMaxHelloStreamBytes, well within an int
  if (lowat == watch->lowat) return true;
  if (setsockopt(watch->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) != 0) return false;
  watch->lowat = lowat;
  return true;
}

// The whole ClientHello was peeked: what it asks for goes into `outcome`.
void TakeParsedHello(const HelloView& view, const AlpnLists& alpn_lists, Outcome& outcome) {
  outcome.parsed = true;
  if (view.host_name != nullptr) {
    outcome.has_servername = true;
    outcome.servername.assign(reinterpret_cast<const char*>(view.host_name), view.host_name_length);
  }
  ChooseProtocols(alpn_lists, view, outcome);
}

// A PROXY header wait: peeks, frames (native/proxy_frame.h), and once the header's end is known
// reads exactly the header, leaving what follows (the ClientHello) in the kernel. kDone with
// `outcome.framed` and the header's bytes, or without (the client's FIN or a queue that will not
// grow before the end was found: JS reads the header itself), or with the socket's error.
// The same peek holds what came after the header: when that is a whole ClientHello (a balancer
// that sends its header with the client's first bytes, or a client quicker than the accept), it
// is parsed here too (`outcome.parsed`), which saves the hello's own wait, peek and call into JS.
PeekResult PeekHeader(Watch* watch, bool woken, const AlpnLists& alpn_lists, Outcome& outcome) {
  PeekBuffers& buffers = ThreadBuffers();
  static_assert(kMaxHelloStreamBytes >= kProxyHeaderMaxBytes, "the peek buffer holds the largest header");
  const ssize_t got = PeekInto(watch->fd, buffers.stream.data(), buffers.stream.size());
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    if (!woken || watch->peeked == 0) return PeekResult::kWait;
    return PeekResult::kDone;
  }
  if (got < 0) {
    outcome.err = errno;
    return PeekResult::kDone;
  }
  if (got == 0) return PeekResult::kDone;
  const size_t length = static_cast<size_t>(got);
  const ProxyFrame frame = FrameProxyHeader(buffers.stream.data(), length, watch->proxy_versions);
  if (frame.framed) {
    ssize_t read;
    do {
      read = recv(watch->fd, buffers.stream.data(), frame.length, MSG_DONTWAIT);
    } while (read < 0 && errno == EINTR);
    // The peek saw these bytes queued, and nobody else reads this socket: all of them come.
    if (read < 0) outcome.err = errno;
    else if (static_cast<size_t>(read) != frame.length) outcome.err = EIO;
    else {
      outcome.framed = true;
      outcome.header.assign(buffers.stream.data(), buffers.stream.data() + frame.length);
      // The read wrote the header's own bytes over themselves: what follows is as peeked. Only
      // a whole hello is taken here; anything else (part of one, or bytes the parser leaves to
      // OpenSSL) is peeked again by the hello's own wait, which knows those cases.
      if (length > frame.length) {
        const HelloView view = ParseClientHello(buffers.stream.data() + frame.length, length - frame.length, buffers.scratch);
        if (view.status == HelloStatus::kComplete) TakeParsedHello(view, alpn_lists, outcome);
      }
    }
    return PeekResult::kDone;
  }
  if (woken && length <= watch->peeked) {
    TakeSocketError(watch->fd, outcome);
    return PeekResult::kDone;
  }
  watch->peeked = length;
  return RaiseLowWater(watch, frame.length) ? PeekResult::kWait : PeekResult::kDone;
}

// kDone with `outcome` filled for a hello parsed whole or left to OpenSSL, else kWait with
// SO_RCVLOWAT at the bytes the parse needs next (the whole need while peeking, what is still
// missing once taking).
PeekResult AfterParse(Watch* watch, const HelloView& view, const AlpnLists& alpn_lists, Outcome& outcome) {
  if (view.status == HelloStatus::kComplete) {
    TakeParsedHello(view, alpn_lists, outcome);
    return PeekResult::kDone;
  }
  if (view.status == HelloStatus::kUnparsed) return PeekResult::kDone;
  return RaiseLowWater(watch, view.need - watch->taken.size()) ? PeekResult::kWait : PeekResult::kDone;
}

// Reads what is queued onto watch->taken and parses all that was taken. Consuming lets the
// kernel queue the rest of a hello larger than the queue. A FIN hands OpenSSL the bytes taken,
// then the end, as it would have read them.
PeekResult Take(Watch* watch, const AlpnLists& alpn_lists, Outcome& outcome) {
  watch->taking = true;
  outcome.saw_bytes = true;
  const ssize_t got = TakeQueued(watch->fd, watch->taken);
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return PeekResult::kWait;
  if (got < 0) {
    outcome.err = errno;
    return PeekResult::kDone;
  }
  if (got == 0) return PeekResult::kDone;
  return AfterParse(watch, ParseClientHello(watch->taken.data(), watch->taken.size(), ThreadBuffers().scratch), alpn_lists, outcome);
}

}  // namespace

PeekResult Peek(Watch* watch, bool woken, const AlpnLists& alpn_lists, Outcome& outcome) {
  if (watch->proxy_versions != 0) return PeekHeader(watch, woken, alpn_lists, outcome);
  if (watch->taking) return Take(watch, alpn_lists, outcome);
  PeekBuffers& buffers = ThreadBuffers();
  const ssize_t got = PeekInto(watch->fd, buffers.stream.data(), buffers.stream.size());
  // Not seen: nothing came before the client's FIN, or its reset. A wake with nothing to read
  // says nothing of the kind, so it counts as seen (the socket's reader will tell).
  outcome.saw_bytes = got > 0 || watch->peeked > 0 || (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    if (!woken || watch->peeked == 0) return PeekResult::kWait;
    return PeekResult::kDone;  // readable yet nothing to read: let the socket's reader see why
  }
  if (got < 0) {
    outcome.err = errno;
    return PeekResult::kDone;
  }
  // The client's FIN with nothing sent: OpenSSL's reader meets it just the same.
  if (got == 0) return PeekResult::kDone;
  const size_t length = static_cast<size_t>(got);
  HelloView view = ParseClientHello(buffers.stream.data(), length, buffers.scratch);
  if (view.status == HelloStatus::kNeedMore && woken && length <= watch->peeked) {
    // Nothing new: a reset behind bytes still queued, a FIN, or a full queue. A full queue (the
    // level-triggered poll keeps waking on it) is read off the socket, so the rest of the hello
    // can come.
    TakeSocketError(watch->fd, outcome);
    if (outcome.err != 0 || PeerFinishedSending(watch->fd)) return PeekResult::kDone;
    return Take(watch, alpn_lists, outcome);
  }
  watch->peeked = length;
  return AfterParse(watch, view, alpn_lists, outcome);
}

// Woken with nothing new (a FIN, a full queue, or a reset behind bytes still queued), or by a
// poll error: libuv would report a reset there as an end (it stops at a hang-up after a short
// read), so the error is taken here and JS fails the connection with it.
void TakeSocketError(int fd, Outcome& outcome) {
  int err = 0;
  socklen_t size = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &size) == 0) outcome.err = err;
}

// Puts SO_RCVLOWAT back for the socket's reader. Failing, the descriptor still goes to JS: its
// reader then sees data only in bigger amounts, and the handshake timeout bounds that.
void RestoreLowWater(Watch* watch) {
  if (watch->lowat == 1) return;
  const int one = 1;
  (void)setsockopt(watch->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
  watch->lowat = 1;
}

}  // namespace ntl
