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
//   [3...] per-address counts, one slot per peer address in use (see AddressTable below);
//                     +1 here at accept, -1 by JS (or here) when the connection is released
// One thread reads and writes them (the listener's), so no atomics are needed; the buffer is
// kept alive by a reference the accept loop holds.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace ntl {

constexpr int kCounterActive = 0;
constexpr int kCounterHandshaking = 1;
constexpr int kCounterPaused = 2;
constexpr int kCounterFirstAddressSlot = 3;

constexpr int32_t kPausedAdmission = 1;
constexpr int32_t kPausedExhausted = 2;

// Why accepting stopped (kept in step with AdmissionReason in src/native/binding.ts).
enum class AdmissionReason : int32_t { kNone = 0, kMaxConnections = 1, kMaxPendingHandshakes = 2 };

struct AdmissionLimits {
  int64_t max_connections = 0;          // 0: no limit
  int64_t max_pending_handshakes = 0;   // 0: no limit
  int64_t max_connections_per_address = 0;  // 0: no limit
  bool counts_handshakes = false;       // the listener has a setup stage (TLS)
};

// A peer address reduced to what the per-address limit counts: 16 bytes, IPv4 (and
// IPv4-mapped IPv6) as ::ffff:a.b.c.d, so both spellings of one client are one key.
using AddressKey = std::array<uint8_t, 16>;

struct AddressKeyHash {
  size_t operator()(const AddressKey& key) const;
};

// Peer address -> slot in the shared counts. A slot whose count JS brought back to 0 is
// reclaimed lazily, when a new address finds no free slot: a close costs JS one decrement.
class AddressTable {
 public:
  void Reset(int32_t* counts, size_t capacity);
  // The slot counting `key`, or -1 when every slot is in use (then the address is not limited).
  int32_t SlotFor(const AddressKey& key);

 private:
  void Reclaim();

  int32_t* counts_ = nullptr;
  size_t capacity_ = 0;
  std::unordered_map<AddressKey, int32_t, AddressKeyHash> slots_;
  std::vector<int32_t> free_;
};

// The peer's address as a key; false for a family that is neither IPv4 nor IPv6.
bool AddressKeyOf(const sockaddr_storage& peer, AddressKey* key);

class AdmissionGate {
 public:
  // `counters` is the shared Int32Array's data, `length` its element count (>= 3).
  void Configure(const AdmissionLimits& limits, int32_t* counters, size_t length);

  // Which limit, if any, is reached: checked before every accept().
  AdmissionReason Full() const;

  // A connection was accepted from `peer`: counts it, or (over the per-address limit) says
  // it must be closed at once. Returns false to reject; `slot` is its per-address slot or -1.
  bool Admit(const sockaddr_storage& peer, int32_t* slot);

  // A connection Admit() counted was closed here (JS never took it): uncount it.
  void Uncount(int32_t slot);

  int32_t& paused() { return counters_[kCounterPaused]; }
  bool configured() const { return counters_ != nullptr; }
  // Whether connections are counted per address (each batch then carries their slots).
  bool per_address() const { return configured() && limits_.max_connections_per_address > 0; }

 private:
  AdmissionLimits limits_;
  int32_t* counters_ = nullptr;
  AddressTable addresses_;
};

}  // namespace ntl
