#include "proxy_frame.h"

#include <algorithm>

namespace ntl {
namespace {

constexpr uint8_t kV1Prefix[] = {'P', 'R', 'O', 'X', 'Y', ' '};
constexpr uint8_t kV2Signature[] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
constexpr uint8_t kCR = 0x0d;
constexpr uint8_t kLF = 0x0a;

ProxyFrame Framed(size_t length) { return ProxyFrame{true, length}; }
ProxyFrame Need(size_t length) { return ProxyFrame{false, length}; }

// Index of the first byte that differs from `expected`, or n when none of the first n does.
size_t Mismatch(const uint8_t* stream, size_t length, const uint8_t* expected, size_t expected_length) {
  const size_t n = std::min(length, expected_length);
  for (size_t i = 0; i < n; i++) {
    if (stream[i] != expected[i]) return i;
  }
  return n;
}

// parseV1: the prefix, then a CR directly followed by LF within 107 bytes; an LF before the
// CR, a CR not followed by LF, or no CR in 107 bytes is its verdict "invalid".
ProxyFrame FrameV1(const uint8_t* stream, size_t length) {
  const size_t differs = Mismatch(stream, length, kV1Prefix, sizeof kV1Prefix);
  if (differs < std::min(length, sizeof kV1Prefix)) return Framed(differs + 1);
  const size_t limit = std::min(length, kProxyV1MaxBytes);
  for (size_t i = 0; i < limit; i++) {
    if (stream[i] == kLF) return Framed(i + 1);
    if (stream[i] == kCR) {
      // A CR as the 107th byte leaves no room for its LF.
      if (i + 1 >= kProxyV1MaxBytes) return Framed(i + 1);
      return i + 1 < length ? Framed(i + 2) : Need(i + 2);
    }
  }
  return length >= kProxyV1MaxBytes ? Framed(kProxyV1MaxBytes) : Need(length + 1);
}

// parseV2: the signature; byte 12 version 2 with command LOCAL or PROXY; byte 13 a known
// family and transport, UNSPEC with UNSPEC only (the same rules as src/proxy/proxy_v2.ts, which
// refuses a prefix that breaks them); then 16 bytes and the length in bytes 14-15.
ProxyFrame FrameV2(const uint8_t* stream, size_t length) {
  const size_t differs = Mismatch(stream, length, kV2Signature, sizeof kV2Signature);
  if (differs < std::min(length, sizeof kV2Signature)) return Framed(differs + 1);
  if (length > 12) {
    const uint8_t version_command = stream[12];
    if ((version_command >> 4) != 0x2 || (version_command & 0x0f) > 0x1) return Framed(13);
  }
  if (length > 13) {
    const uint8_t family = stream[13] >> 4;
    const uint8_t transport = stream[13] & 0x0f;
    if (family > 0x3 || transport > 0x2 || (family == 0) != (transport == 0)) return Framed(14);
  }
  if (length < kProxyV2FixedBytes) return Need(length + 1);
  const size_t total = kProxyV2FixedBytes + ((static_cast<size_t>(stream[14]) << 8) | stream[15]);
  return length >= total ? Framed(total) : Need(total);
}

}  // namespace

ProxyFrame FrameProxyHeader(const uint8_t* stream, size_t length, int versions) {
  if (length == 0) return Need(1);
  // A first byte of neither version, or of one not accepted: the parser refuses it at once.
  if (stream[0] == kV1Prefix[0] && (versions & kProxyAcceptV1) != 0) return FrameV1(stream, length);
  if (stream[0] == kV2Signature[0] && (versions & kProxyAcceptV2) != 0) return FrameV2(stream, length);
  return Framed(1);
}

}  // namespace ntl
