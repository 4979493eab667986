// Admission control: whether the accept loop may take one more connection, decided in C++
// before any JS runs, from counters that JS and C++ share through one Int32Array.
//
// The shared counters (layout kept in step with src/accept/admission.ts):
//   [0] active        admitted and not yet released: +1 here at accept, -1 by JS when the
//                     registry releases the connection (or here, for a descriptor JS never took)
//   [1] handshaking   admitted and still in setup (only on listeners with a handshake): +1
//                     here at accept, -1 by JS when setup ends, either way
//   [2] paused        the reasons accepting is paused for (kPausedAdmission, kPausedExhausted),
//                     so JS calls resume() only when there is something to resume
// Per-address counts are not shared: they live in the gate's AddressCounts table
// (native/address_counts.h), and JS counts a connection out through Acceptor.releaseAddress().
// One thread reads and writes them (the listener's), so no atomics are needed; the buffer is
// kept alive by a reference the accept loop holds.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "address_counts.h"

namespace ntl {

constexpr int kCounterActive = 0;
constexpr int kCounterHandshaking = 1;
constexpr int kCounterPaused = 2;
constexpr int kCounterCount = 3;

constexpr int32_t kPausedAdmission = 1;
constexpr int32_t kPausedExhausted = 2;

// Why accepting stopped (kept in step with AdmissionReason in src/native/binding.ts).
enum class AdmissionReason : int32_t { kNone = 0, kMaxConnections = 1, kMaxPendingHandshakes = 2 };

struct AdmissionLimits {
  int64_t max_connections = 0;          // 0: no limit
  int64_t max_pending_handshakes = 0;   // 0: no limit
  int64_t max_connections_per_address = 0;  // 0: no limit
  int ipv6_prefix = kDefaultIPv6Prefix;     // the bits of an IPv6 peer that make its key
  int64_t address_table_size = 0;           // addresses at most; 0: AddressTableSize()
  bool counts_handshakes = false;       // the listener has a setup stage (TLS)
};

// What Admit() decides for a connection accept() returned.
enum class Admitted { kYes, kOverLimit, kTableFull };

class AdmissionGate {
 public:
  // `counters` is the shared Int32Array's data, `length` its element count (>= 3).
  void Configure(const AdmissionLimits& limits, int32_t* counters, size_t length);

  // Which limit, if any, is reached: checked before every accept().
  AdmissionReason Full() const;

  // A connection was accepted from `peer`: counts it, or says it must be closed at once (its
  // address is at the per-address limit, or new and the table is full). `slot` is its
  // per-address slot or -1.
  Admitted Admit(const sockaddr_storage& peer, int32_t* slot);

  // A connection Admit() counted was closed here (JS never took it): uncount it.
  void Uncount(int32_t slot);
  // JS released a connection counted in `slot`: false when the slot counts nothing.
  bool ReleaseAddress(int32_t slot) { return addresses_.Release(slot); }

  int32_t& paused() { return counters_[kCounterPaused]; }
  bool configured() const { return counters_ != nullptr; }
  // Whether connections are counted per address (each batch then carries their slots).
  bool per_address() const { return configured() && limits_.max_connections_per_address > 0; }

 private:
  AdmissionLimits limits_;
  int32_t* counters_ = nullptr;
  AddressCounts addresses_;
};

}  // namespace ntl
