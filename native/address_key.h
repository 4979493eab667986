// What maxConnectionsPerAddress counts a connection under: the one rule, for both native
// drivers (the loop acceptor and the workers' accept thread) and the PROXY headers the workers
// read. src/accept/address_key.ts is the same rule in TS; test/fixtures/address_keys.json
// holds the cases both are tested against.
//   IPv4                    -> itself
//   IPv4-mapped IPv6        -> its IPv4 address (a v4 client of a dual-stack socket)
//   any other IPv6          -> its first `ipv6_prefix` bits (default /64: one client's subnet,
//                              since a host picks any address in its /64 at no cost)
//   anything else (unix)    -> not limited
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string>

namespace ntl {

constexpr int kDefaultIPv6Prefix = 64;

// 16 bytes: IPv4 as ::ffff:a.b.c.d, IPv6 with the bits past the prefix zeroed. The two never
// collide: a masked IPv6 key has ffff in bytes 10-11 only if it is IPv4-mapped, read as IPv4.
using AddressKey = std::array<uint8_t, 16>;

// The key of accept()'s peer; false when it is not limited (neither IPv4 nor IPv6).
bool AddressKeyOf(const sockaddr_storage& peer, int ipv6_prefix, AddressKey* key);
// The same from an address as text (a PROXY header's client; an IPv6 zone, "%eth0", is
// ignored as accept()'s scope id is); false when the text is not an IP address.
bool AddressKeyOfText(const std::string& text, int ipv6_prefix, AddressKey* key);
// The key as TS writes it: dotted IPv4, or RFC 5952 IPv6 ("2001:db8::").
std::string AddressKeyText(const AddressKey& key);

}  // namespace ntl
