// When the kernel will not queue a whole ClientHello: the receive queue holds what the socket's
// receive buffer had room for when the hello arrived, the buffer grows only as its reader
// consumes, and a peek consumes nothing, so a hello larger than the queue (measured on Linux 6.x:
// about 125 KiB with the default tcp_rmem, for OpenSSL's largest, 128 KiB) would never be whole
// there. The peeker then takes the hello's bytes off the socket (native/hello_peek.cc) and hands
// them to JS with the descriptor, to be put back in front of the stream OpenSSL reads.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

namespace ntl {

// Whether the peer has ended its side (a FIN was received), so the queue will not grow. Where
// the system cannot say (no TCP_INFO), true: the caller then treats a stuck queue as ended.
bool PeerFinishedSending(int fd);

// Reads what the socket holds onto `taken`, up to kMaxHelloStreamBytes in all (native/hello_parse.h).
// Returns recv's result: the bytes added, 0 at the peer's FIN, or -1 with errno set (EAGAIN:
// nothing queued). Retries EINTR.
ssize_t TakeQueued(int fd, std::vector<uint8_t>& taken);

}  // namespace ntl
