// What both accept drivers share with JS: the options they read (the acceptor on a thread's
// libuv loop, native/acceptor.cc; the accept thread feeding workers, native/dispatcher.cc) and
// the kinds of event they report. One definition for both; src/native/binding.ts keeps the
// same numbers (AcceptEventKind) and src/accept/acceptor_options.ts the same ranges.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

#include "address_counts.h"
#include "address_key.h"
#include "arguments.h"

namespace ntl {

// kEventBackpressure (the acceptor only): accepting stopped at an admission limit; its errno
// argument is the AdmissionReason. Leaving it is JS's own call to resume(), so it has no event.
enum AcceptEventKind : int32_t { kEventRetry = 0, kEventPause = 1, kEventFatal = 2, kEventBackpressure = 3 };

// A batch holds at most batchLimit descriptors; back-off delays are timer milliseconds.
constexpr int64_t kBatchLimitMax = 4096;
constexpr int64_t kPauseMinMsMax = 60000;
constexpr int64_t kPauseMaxMsMax = 3600000;
// Admission limits (maxConnections, maxPendingHandshakes, maxConnectionsPerAddress,
// maxQueuedConnections): 0 is "no limit" where it applies.
constexpr int64_t kAdmissionLimitMax = INT32_MAX;

struct AcceptTuning {
  size_t batch_limit;
  uint64_t pause_min_ms;
  uint64_t pause_max_ms;
};

// batchLimit (default 128), pauseMinMs (5) and pauseMaxMs (1000, never below pauseMinMs) from
// `options`; throws ERR_INVALID_OPTION for one out of range.
inline AcceptTuning ReadAcceptTuning(Napi::Env env, const Napi::Object& options) {
  int64_t batch_limit = OptionalInteger(env, options, "batchLimit", 128, 1, kBatchLimitMax);
  int64_t pause_min_ms = OptionalInteger(env, options, "pauseMinMs", 5, 1, kPauseMinMsMax);
  int64_t pause_max_ms =
      OptionalInteger(env, options, "pauseMaxMs", pause_min_ms > 1000 ? pause_min_ms : 1000, pause_min_ms, kPauseMaxMsMax);
  return AcceptTuning{static_cast<size_t>(batch_limit), static_cast<uint64_t>(pause_min_ms), static_cast<uint64_t>(pause_max_ms)};
}

// The admission options both drivers take, checked in one place (0 is "no limit").
struct AdmissionOptions {
  int64_t max_connections;
  int64_t max_pending_handshakes;
  int64_t max_connections_per_address;
  int ipv6_prefix;              // perAddressIPv6Prefix: the bits of an IPv6 peer that make its key
  int64_t address_table_size;   // 0: AddressTableSize() decides
  int64_t max_queued;           // maxQueuedConnections; -1 when absent: the queue is not bounded
};

// maxConnections, maxPendingHandshakes, maxConnectionsPerAddress, perAddressIPv6Prefix (default
// /64), addressTableSize and maxQueuedConnections from `options`; throws ERR_INVALID_OPTION for one
// out of range, or for maxQueuedConnections without a limit it could apply under (it only
// matters while accepting is paused at one).
inline AdmissionOptions ReadAdmissionOptions(Napi::Env env, const Napi::Object& options) {
  AdmissionOptions read{};
  read.max_connections = OptionalInteger(env, options, "maxConnections", 0, 0, kAdmissionLimitMax);
  read.max_pending_handshakes = OptionalInteger(env, options, "maxPendingHandshakes", 0, 0, kAdmissionLimitMax);
  read.max_connections_per_address = OptionalInteger(env, options, "maxConnectionsPerAddress", 0, 0, kAdmissionLimitMax);
  read.ipv6_prefix = static_cast<int>(OptionalInteger(env, options, "perAddressIPv6Prefix", kDefaultIPv6Prefix, 1, 128));
  read.address_table_size =
      OptionalInteger(env, options, "addressTableSize", 0, 1, static_cast<int64_t>(kAddressTableMax));
  read.max_queued = OptionalInteger(env, options, "maxQueuedConnections", -1, 0, kAdmissionLimitMax);
  if (read.max_queued >= 0 && read.max_connections == 0 && read.max_pending_handshakes == 0) {
    throw InvalidArgument(env, false, "maxQueuedConnections needs maxConnections or maxPendingHandshakes");
  }
  return read;
}

}  // namespace ntl
