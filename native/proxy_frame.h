// Where a PROXY protocol header (HAProxy's doc/proxy-protocol.txt) ends in the first bytes of a
// connection, found from bytes peeked off the socket (native/hello_peek.cc), so that exactly the
// header is then read and the client's own bytes (its ClientHello) stay in the kernel.
//
// This only frames the header: the bytes it frames go to the header's parser in JS
// (src/proxy/proxy_v1.ts, proxy_v2.ts), which decides whether they are a valid header. The
// frame is the shortest prefix on which that parser gives its verdict (complete or invalid):
// every check it makes on a prefix before the header's end is made here too, so a header that
// is wrong from its first bytes is refused as soon as they arrive, as when JS read it.
// No Node or libuv here, so the fuzz harness (native/fuzz/) links this file alone.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ntl {

// Version 1 is one line of at most 107 bytes; version 2 is 16 bytes and a 16-bit length.
constexpr size_t kProxyV1MaxBytes = 107;
constexpr size_t kProxyV2FixedBytes = 16;
constexpr size_t kProxyHeaderMaxBytes = kProxyV2FixedBytes + 0xffff;

// Which versions the listener accepts (proxyProtocol.version): bit 0 version 1, bit 1 version 2.
constexpr int kProxyAcceptV1 = 1;
constexpr int kProxyAcceptV2 = 2;

struct ProxyFrame {
  // The header's parser has its verdict on stream[0, length): read exactly that much.
  bool framed = false;
  // framed: the bytes to read (1..kProxyHeaderMaxBytes, <= the bytes given); else the bytes
  // that must be held before the frame can be known (> the bytes given, <= kProxyHeaderMaxBytes).
  size_t length = 0;
};

// Frames stream[0, length) for a listener accepting `versions` (kProxyAccept* bits, not 0).
ProxyFrame FrameProxyHeader(const uint8_t* stream, size_t length, int versions);

}  // namespace ntl
