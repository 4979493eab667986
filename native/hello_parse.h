// A bounded parser of the first bytes a TLS client sends: the record layer and the ClientHello
// in it, just far enough to learn the server_name host name and the ALPN list. It never
// answers the client and never consumes anything: it reads bytes peeked from the socket
// (native/hello_peek.cc), and whatever it cannot make sense of is "unparsed", which sends the
// untouched bytes to OpenSSL, so a malformed hello gets OpenSSL's own alert.
//
// Every length is checked against the length enclosing it and against the bytes held; nothing
// is allocated from a declared length (reassembly of a hello spread over records goes into the
// caller's scratch buffer, bounded by the input); every loop advances through bounded input.
// No Node or libuv here, so the fuzz harness (native/fuzz/) links this file alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ntl {

// OpenSSL's bound on a ClientHello message (ssl/statem/statem_srvr.c CLIENT_HELLO_MAX_LENGTH).
constexpr size_t kMaxClientHelloBytes = 131396;
// RFC 8446 5.1: a plaintext record body is at most 2^14 bytes (more is record_overflow).
constexpr size_t kMaxRecordBodyBytes = 16384;
constexpr size_t kRecordHeaderBytes = 5;
constexpr size_t kHandshakeHeaderBytes = 4;
// Most stream bytes a hello may take to be parsed here: the largest hello OpenSSL accepts, in
// up to 64 records (2 KiB each on average), with their headers. A hello needing more (over
// OpenSSL's own limit, or cut into tiny records) is handed to OpenSSL unparsed.
constexpr size_t kMaxHelloStreamBytes = kMaxClientHelloBytes + kHandshakeHeaderBytes + 64 * kRecordHeaderBytes;

enum class HelloStatus { kNeedMore, kComplete, kUnparsed };

struct HelloView {
  HelloStatus status = HelloStatus::kUnparsed;
  // kNeedMore: stream bytes that must be held before the parse can go further (> length given).
  size_t need = 0;
  // kComplete: the first host_name of server_name, when the client sent a non-empty one
  // (OpenSSL, and so Node, treats an empty one as no name). Points into the input or scratch.
  const uint8_t* host_name = nullptr;
  size_t host_name_length = 0;
  // kComplete: the ALPN ProtocolNameList's contents (length-prefixed names), when sent.
  const uint8_t* alpn = nullptr;
  size_t alpn_length = 0;
};

// Parses `stream[0, length)`, the first bytes of a connection. `scratch` is reused between calls
// (it holds a hello spread over several records); the view's pointers are valid while both
// `stream` and `scratch` are unchanged.
HelloView ParseClientHello(const uint8_t* stream, size_t length, std::vector<uint8_t>& scratch);

// Calls visit(name, name_length) for each protocol of a list ParseClientHello validated, in the
// client's order, until visit returns true; returns whether one did.
template <typename Visit>
bool ForEachAlpnProtocol(const uint8_t* list, size_t length, Visit visit) {
  size_t at = 0;
  while (at < length) {
    size_t name_length = list[at];
    if (name_length == 0 || name_length > length - at - 1) return false;
    if (visit(list + at + 1, name_length)) return true;
    at += 1 + name_length;
  }
  return false;
}

}  // namespace ntl
