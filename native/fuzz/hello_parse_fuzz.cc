// libFuzzer target for the ClientHello parser (native/hello_parse.cc): any bytes, under ASan and
// UBSan (scripts/test-sanitize.sh builds and runs it for a bounded time). Besides memory errors
// it checks what the peeker relies on:
//  - kNeedMore asks for more than it was given, and never past kMaxHelloStreamBytes (the peek
//    buffer), so the low-water mark always grows and a wait always ends;
//  - a verdict on a prefix holds for the whole input: an unparsed prefix stays unparsed, a
//    complete one stays complete with the same name and ALPN list (what follows the hello is
//    not the parser's business), and the input reaching a need settles it or asks for more;
//  - the name and the ALPN list it reports lie inside the input or the scratch buffer, the list
//    is well formed, and a name has no NUL and at most 255 bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../hello_parse.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

bool Inside(const uint8_t* pointer, size_t length, const uint8_t* base, size_t size) {
  return pointer >= base && pointer + length <= base + size;
}

struct Verdict {
  ntl::HelloStatus status;
  size_t need;
  std::string name;
  std::string alpn;
};

Verdict Parse(const uint8_t* data, size_t size) {
  std::vector<uint8_t> scratch;
  ntl::HelloView view = ntl::ParseClientHello(data, size, scratch);
  Verdict verdict{view.status, view.need, {}, {}};
  if (view.status == ntl::HelloStatus::kNeedMore) {
    Check(view.need > size);
    Check(view.need <= ntl::kMaxHelloStreamBytes);
  }
  if (view.status != ntl::HelloStatus::kComplete) {
    Check(view.host_name == nullptr && view.alpn == nullptr);
    return verdict;
  }
  if (view.host_name != nullptr) {
    Check(Inside(view.host_name, view.host_name_length, data, size) ||
          Inside(view.host_name, view.host_name_length, scratch.data(), scratch.size()));
    Check(view.host_name_length > 0 && view.host_name_length <= 255);
    Check(std::memchr(view.host_name, 0, view.host_name_length) == nullptr);
    verdict.name.assign(reinterpret_cast<const char*>(view.host_name), view.host_name_length);
  }
  if (view.alpn != nullptr) {
    Check(Inside(view.alpn, view.alpn_length, data, size) || Inside(view.alpn, view.alpn_length, scratch.data(), scratch.size()));
    size_t seen = 0;
    ntl::ForEachAlpnProtocol(view.alpn, view.alpn_length, [&](const uint8_t*, size_t length) {
      seen += 1 + length;
      return false;
    });
    Check(seen == view.alpn_length);
    verdict.alpn.assign(reinterpret_cast<const char*>(view.alpn), view.alpn_length);
  }
  return verdict;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Copies, so ASan sees reads past the bytes given (the fuzzer's own buffer may be larger).
  std::vector<uint8_t> whole(data, data + size);
  const Verdict all = Parse(whole.data(), whole.size());
  if (size == 0) return 0;
  const size_t cut = data[0] % size;
  std::vector<uint8_t> prefix(data, data + cut);
  const Verdict part = Parse(prefix.data(), prefix.size());
  if (part.status == ntl::HelloStatus::kUnparsed) Check(all.status == ntl::HelloStatus::kUnparsed);
  if (part.status == ntl::HelloStatus::kComplete) {
    Check(all.status == ntl::HelloStatus::kComplete && all.name == part.name && all.alpn == part.alpn);
  }
  if (part.status == ntl::HelloStatus::kNeedMore && size >= part.need) Check(all.status != ntl::HelloStatus::kNeedMore || all.need > part.need);
  return 0;
}
