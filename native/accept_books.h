// The books both accept drivers keep (the loop driver's AcceptCounters, native/acceptor.h; the
// thread driver's DispatchShared, native/dispatch_state.h), and how stats() shows them: the
// same counters under the same names, built in one place.
#pragma once

#include <napi.h>

#include <cstdint>
#include <map>

namespace ntl {

struct AcceptBooks {
  uint64_t accepted = 0;
  uint64_t batches = 0;
  uint64_t pauses = 0;  // back-offs (EMFILE, a repeating error, a failing poll)
  std::map<int, uint64_t> retries_by_errno;
  uint64_t admission_pauses = 0;  // times accepting stopped at an admission limit
  // Closed at accept: over maxConnectionsPerAddress, or from a new address with the
  // per-address table full.
  uint64_t rejected_per_address = 0;
  uint64_t rejected_address_table_full = 0;
  // Reset from the accept queue beyond maxQueuedConnections while paused, and the CPU time that
  // took (native/load_shedding.h).
  uint64_t rejected_queued = 0;
  uint64_t shedding_cpu_ns = 0;
};

// accepted, batches, pauses and retriesByErrno, set on `stats`.
void SetAcceptCounts(Napi::Env env, Napi::Object& stats, const AcceptBooks& books);
// rejectedPerAddress, rejectedAddressTableFull, rejectedQueued and, when `with_shedding_cpu`,
// sheddingCpuMs, set on `target` (the acceptor's stats.admission, the dispatcher's stats).
void SetRejections(Napi::Env env, Napi::Object& target, const AcceptBooks& books, bool with_shedding_cpu);

}  // namespace ntl
