// libFuzzer target for the PROXY header framer (native/proxy_frame.cc): any bytes, under ASan and
// UBSan (scripts/test-sanitize.sh builds and runs it for a bounded time, with the ClientHello
// parser's). The first byte picks the accepted versions; the rest is the stream. Besides memory
// errors it checks what the peeker relies on:
//  - a frame is 1..kProxyHeaderMaxBytes and within the bytes given, so the exact read that
//    follows never takes a byte the peek did not see;
//  - a need is more than was given and at most kProxyHeaderMaxBytes, so the low-water mark
//    always grows and a wait always ends;
//  - a verdict on a prefix holds for the whole input: framed at the same length, or (a need)
//    still needing at least as much, or framed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "../proxy_frame.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

ntl::ProxyFrame Frame(const uint8_t* data, size_t size, int versions) {
  // A copy, so ASan sees reads past the bytes given (the fuzzer's own buffer may be larger).
  std::vector<uint8_t> copy(data, data + size);
  ntl::ProxyFrame frame = ntl::FrameProxyHeader(copy.data(), copy.size(), versions);
  if (frame.framed) {
    Check(frame.length >= 1 && frame.length <= size && frame.length <= ntl::kProxyHeaderMaxBytes);
  } else {
    Check(frame.length > size && frame.length <= ntl::kProxyHeaderMaxBytes);
  }
  return frame;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int versions = 1 + data[0] % 3;
  const uint8_t* stream = data + 1;
  const size_t length = size - 1;
  const ntl::ProxyFrame all = Frame(stream, length, versions);
  const size_t cut = data[1] % length;
  const ntl::ProxyFrame part = Frame(stream, cut, versions);
  if (part.framed) Check(all.framed && all.length == part.length);
  if (!part.framed && length >= part.length) Check(all.framed || all.length > part.length);
  return 0;
}
