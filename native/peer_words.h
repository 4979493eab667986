// A batch's peers for JS as numbers, not objects: the acceptor writes each peer that accept()
// gave into a reused Int32Array, and JS builds the `{ address, family, port }` it needs from
// them. Building one object and one string per connection through N-API cost about 9 µs a
// connection at one client at a time (perf, Node 20), more than accept4() itself; writing three
// integers costs nothing measurable.
//
// Words per peer, at index * kPeerWords (src/accept/peer_address.ts reads the same layout):
//   [0] kind (PeerKind), [1] port, [2] the IPv4 address in host byte order (IPv4 and
//   IPv4-mapped IPv6 peers; 0 otherwise).
// An IPv6 peer that is not IPv4-mapped is rare enough to keep its text: inet_ntop's, in a
// separate array of strings at the same index.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace ntl {

constexpr size_t kPeerWords = 3;

enum PeerKind : int32_t { kPeerNone = 0, kPeerIPv4 = 1, kPeerIPv4Mapped = 2, kPeerIPv6 = 3 };

// Writes `peer` into words[0..kPeerWords). Returns kPeerIPv6 when JS also needs the text
// (then `ipv6_text` holds it); kPeerNone for a family that is not IP.
PeerKind WritePeerWords(const sockaddr_storage& peer, int32_t* words, std::string* ipv6_text);

}  // namespace ntl
