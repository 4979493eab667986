#include "hello_parse.h"

#include <cstring>

namespace ntl {
namespace {

constexpr uint8_t kContentHandshake = 22;
constexpr uint8_t kRecordVersionMajor = 3;
constexpr uint8_t kHandshakeClientHello = 1;
constexpr size_t kExtensionServerName = 0;
constexpr size_t kExtensionAlpn = 16;
constexpr size_t kNameTypeHostName = 0;
// OpenSSL's bounds: a longer host name is unrecognized_name, a longer session id decode_error.
constexpr size_t kMaxHostNameBytes = 255;
constexpr size_t kMaxSessionIdBytes = 32;
constexpr size_t kRandomBytes = 32;

// Reads [data, data + left) front to back; every read checks what is left first.
class Reader {
 public:
  Reader() = default;
  Reader(const uint8_t* data, size_t left) : data_(data), left_(left) {}
  size_t left() const { return left_; }
  const uint8_t* at() const { return data_; }
  bool Skip(size_t count) {
    if (count > left_) return false;
    data_ += count;
    left_ -= count;
    return true;
  }
  bool Integer(size_t bytes, size_t& out) {
    if (bytes > left_) return false;
    out = 0;
    for (size_t i = 0; i < bytes; i++) out = (out << 8) | data_[i];
    return Skip(bytes);
  }
  // A vector with a `prefix`-byte length: its contents become `out`.
  bool Vector(size_t prefix, Reader& out) {
    size_t length = 0;
    if (!Integer(prefix, length) || length > left_) return false;
    out = Reader(data_, length);
    return Skip(length);
  }

 private:
  const uint8_t* data_ = nullptr;
  size_t left_ = 0;
};

HelloView Unparsed() { return HelloView{}; }

HelloView NeedMore(size_t need) {
  if (need > kMaxHelloStreamBytes) return Unparsed();
  HelloView view;
  view.status = HelloStatus::kNeedMore;
  view.need = need;
  return view;
}

// OpenSSL's tls_parse_ctos_server_name: exactly one entry, a host_name; anything else is an
// alert OpenSSL sends, so it is left to OpenSSL (false).
bool ParseServerName(Reader extension, HelloView& view) {
  Reader list;
  Reader name;
  size_t type = 0;
  if (!extension.Vector(2, list) || extension.left() != 0 || list.left() == 0) return false;
  if (!list.Integer(1, type) || type != kNameTypeHostName || !list.Vector(2, name) || list.left() != 0) return false;
  if (name.left() > kMaxHostNameBytes) return false;
  if (name.left() == 0) return true;
  if (std::memchr(name.at(), 0, name.left()) != nullptr) return false;
  view.host_name = name.at();
  view.host_name_length = name.left();
  return true;
}

// OpenSSL's tls_parse_ctos_alpn: a non-empty list of non-empty names, nothing after it.
bool ParseAlpn(Reader extension, HelloView& view) {
  Reader list;
  if (!extension.Vector(2, list) || extension.left() != 0 || list.left() < 2) return false;
  view.alpn = list.at();
  view.alpn_length = list.left();
  while (list.left() > 0) {
    Reader name;
    if (!list.Vector(1, name) || name.left() == 0) return false;
  }
  return true;
}

// The ClientHello body (RFC 8446 4.1.2), as far as the extensions that matter here.
HelloView ParseBody(Reader hello) {
  Reader session;
  Reader ciphers;
  Reader compression;
  if (!hello.Skip(2 + kRandomBytes)) return Unparsed();
  if (!hello.Vector(1, session) || session.left() > kMaxSessionIdBytes) return Unparsed();
  if (!hello.Vector(2, ciphers) || ciphers.left() < 2 || ciphers.left() % 2 != 0) return Unparsed();
  if (!hello.Vector(1, compression) || compression.left() == 0) return Unparsed();
  HelloView view;
  view.status = HelloStatus::kComplete;
  if (hello.left() == 0) return view;  // no extensions at all
  Reader extensions;
  if (!hello.Vector(2, extensions) || hello.left() != 0) return Unparsed();
  bool seen_server_name = false;
  bool seen_alpn = false;
  while (extensions.left() > 0) {
    size_t type = 0;
    Reader data;
    if (!extensions.Integer(2, type) || !extensions.Vector(2, data)) return Unparsed();
    if (type == kExtensionServerName) {
      if (seen_server_name || !ParseServerName(data, view)) return Unparsed();
      seen_server_name = true;
    } else if (type == kExtensionAlpn) {
      if (seen_alpn || !ParseAlpn(data, view)) return Unparsed();
      seen_alpn = true;
    }
  }
  return view;
}

}  // namespace

HelloView ParseClientHello(const uint8_t* stream, size_t length, std::vector<uint8_t>& scratch) {
  // The handshake message is gathered from the records' bodies into `scratch` (a few hundred
  // bytes for real clients), whatever the records' sizes; empty records carry nothing and are
  // passed over, as OpenSSL does.
  scratch.clear();
  size_t message = 0;  // the whole message's bytes (header included), once its header is held
  size_t at = 0;
  for (;;) {
    // The answer depends on the first kMaxHelloStreamBytes only, whatever the caller holds.
    if (at + kRecordHeaderBytes > kMaxHelloStreamBytes) return Unparsed();
    if (length - at < kRecordHeaderBytes) return NeedMore(at + kRecordHeaderBytes);
    const uint8_t* header = stream + at;
    if (header[0] != kContentHandshake || header[1] != kRecordVersionMajor) return Unparsed();
    const size_t body = (static_cast<size_t>(header[3]) << 8) | header[4];
    if (body > kMaxRecordBodyBytes) return Unparsed();
    const size_t start = at + kRecordHeaderBytes;
    if (start + body > kMaxHelloStreamBytes) return Unparsed();
    if (length - start < body) return NeedMore(start + body);
    size_t take = body;
    if (message != 0 && take > message - scratch.size()) take = message - scratch.size();
    scratch.insert(scratch.end(), stream + start, stream + start + take);
    if (message == 0 && scratch.size() >= kHandshakeHeaderBytes) {
      if (scratch[0] != kHandshakeClientHello) return Unparsed();
      const size_t declared = (static_cast<size_t>(scratch[1]) << 16) | (static_cast<size_t>(scratch[2]) << 8) | scratch[3];
      if (declared > kMaxClientHelloBytes) return Unparsed();
      message = kHandshakeHeaderBytes + declared;
      // The record's bytes past the message are not the hello's.
      if (scratch.size() > message) scratch.resize(message);
    }
    if (message != 0 && scratch.size() == message) {
      return ParseBody(Reader(scratch.data() + kHandshakeHeaderBytes, message - kHandshakeHeaderBytes));
    }
    at = start + body;
  }
}

}  // namespace ntl
