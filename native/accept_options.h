// What both accept drivers share with JS: the options they read (the acceptor on a thread's
// libuv loop, native/acceptor.cc; the accept thread feeding workers, native/dispatcher.cc) and
// the kinds of event they report. One definition for both; src/native/binding.ts keeps the
// same numbers (AcceptEventKind) and src/accept/acceptor_options.ts the same ranges.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

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

}  // namespace ntl
