#include "address_key.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstring>

namespace ntl {

namespace {

bool IsMapped(const uint8_t* bytes) {
  for (int i = 0; i < 10; i++) {
    if (bytes[i] != 0) return false;
  }
  return bytes[10] == 0xff && bytes[11] == 0xff;
}

void SetIPv4(const void* address, AddressKey* key) {
  key->fill(0);
  (*key)[10] = 0xff;
  (*key)[11] = 0xff;
  std::memcpy(key->data() + 12, address, 4);
}

void SetIPv6(const uint8_t* bytes, int ipv6_prefix, AddressKey* key) {
  if (IsMapped(bytes)) {
    SetIPv4(bytes + 12, key);
    return;
  }
  int prefix = ipv6_prefix < 1 ? 1 : ipv6_prefix > 128 ? 128 : ipv6_prefix;
  for (int i = 0; i < 16; i++) {
    int bits = prefix - 8 * i;
    uint8_t mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    (*key)[i] = bytes[i] & mask;
  }
}

}  // namespace

bool AddressKeyOf(const sockaddr_storage& peer, int ipv6_prefix, AddressKey* key) {
  if (peer.ss_family == AF_INET) {
    SetIPv4(&reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr, key);
    return true;
  }
  if (peer.ss_family == AF_INET6) {
    SetIPv6(reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr.s6_addr, ipv6_prefix, key);
    return true;
  }
  return false;
}

bool AddressKeyOfText(const std::string& text, int ipv6_prefix, AddressKey* key) {
  // Longer than any address (INET6_ADDRSTRLEN plus a zone): not one.
  if (text.size() >= 64) return false;
  in_addr v4;
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    SetIPv4(&v4, key);
    return true;
  }
  in6_addr v6;
  std::string bare = text.substr(0, text.find('%'));
  if (inet_pton(AF_INET6, bare.c_str(), &v6) != 1) return false;
  SetIPv6(v6.s6_addr, ipv6_prefix, key);
  return true;
}

std::string AddressKeyText(const AddressKey& key) {
  char buffer[INET6_ADDRSTRLEN];
  if (IsMapped(key.data())) {
    return inet_ntop(AF_INET, key.data() + 12, buffer, sizeof buffer) != nullptr ? buffer : "";
  }
  // RFC 5952 by hand, not inet_ntop: glibc writes ::a.b.c.d for some keys, TS never does.
  uint16_t groups[8];
  for (int i = 0; i < 8; i++) groups[i] = static_cast<uint16_t>((key[2 * i] << 8) | key[2 * i + 1]);
  int best_start = -1;
  int best_length = 1;
  for (int i = 0; i < 8;) {
    if (groups[i] != 0) {
      i++;
      continue;
    }
    int j = i;
    while (j < 8 && groups[j] == 0) j++;
    if (j - i > best_length) {
      best_start = i;
      best_length = j - i;
    }
    i = j;
  }
  std::string out;
  for (int i = 0; i < 8; i++) {
    if (i == best_start) {
      out += "::";
      i += best_length - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    char group[5];
    snprintf(group, sizeof group, "%x", groups[i]);
    out += group;
  }
  return out;
}

}  // namespace ntl
