#include "peer_words.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace ntl {

PeerKind WritePeerWords(const sockaddr_storage& peer, int32_t* words, std::string* ipv6_text) {
  words[0] = kPeerNone;
  words[1] = 0;
  words[2] = 0;
  if (peer.ss_family == AF_INET) {
    const auto* addr = reinterpret_cast<const sockaddr_in*>(&peer);
    words[0] = kPeerIPv4;
    words[1] = ntohs(addr->sin_port);
    // The bits of the host-order address; JS reads them back unsigned (>>> 0).
    words[2] = static_cast<int32_t>(ntohl(addr->sin_addr.s_addr));
    return kPeerIPv4;
  }
  if (peer.ss_family == AF_INET6) {
    const auto* addr = reinterpret_cast<const sockaddr_in6*>(&peer);
    words[1] = ntohs(addr->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&addr->sin6_addr)) {
      // ::ffff:a.b.c.d, as inet_ntop (and Node's getpeername) writes it.
      uint32_t v4 = 0;
      std::memcpy(&v4, &addr->sin6_addr.s6_addr[12], sizeof v4);
      words[0] = kPeerIPv4Mapped;
      words[2] = static_cast<int32_t>(ntohl(v4));
      return kPeerIPv4Mapped;
    }
    char text[INET6_ADDRSTRLEN] = {0};
    if (inet_ntop(AF_INET6, &addr->sin6_addr, text, sizeof text) == nullptr) return kPeerNone;
    words[0] = kPeerIPv6;
    *ipv6_text = text;
    return kPeerIPv6;
  }
  return kPeerNone;
}

}  // namespace ntl
