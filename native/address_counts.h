// maxConnectionsPerAddress: one table of connections per address key (native/address_key.h),
// used by both native drivers: the loop acceptor (AdmissionGate, one thread) and, with
// workers, the accept thread and every worker thread (DispatchShared).
//
// Bounded and O(1):
//  - it holds at most `capacity` addresses (kAddressTableMax at most: the cap the README
//    states); its arrays are reserved when it is configured, 44 bytes per address (entry 32,
//    index 8, free list 4), so 2.75 MiB at the cap. A new address that finds it full is
//    refused (kAddressTableFull): failing open would let that many distinct addresses turn
//    the limit off for everyone.
//  - lookups are open addressing with linear probing in a power-of-two index at most half
//    full, hashed with SipHash keyed from std::random_device per table, so a client choosing
//    its addresses cannot aim them at one chain. A slot is freed when its count returns to 0
//    (backward-shift deletion, no tombstones), so there is never a scan to reclaim slots.
//
// Its own mutex, a leaf lock (nothing else is locked under it): uncontended on one thread.
// Who counts a connection out: whoever ends it, by the slot Admit returned (see the callers:
// native/acceptor.h, native/dispatch_state.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "address_key.h"

namespace ntl {

// Addresses one table holds at most (src/accept/address_limit.ts has the same cap).
constexpr size_t kAddressTableMax = 65536;

// What Admit returns besides a slot (>= 0).
constexpr int32_t kAddressNotCounted = -1;  // not limited (no table, or not an address)
constexpr int32_t kAddressOverLimit = -2;   // the address has `limit` connections already
constexpr int32_t kAddressTableFull = -3;   // a new address, and the table is full

// The table's size: `requested` when given (> 0), else maxConnections (0: none) up to the cap,
// since there are never more addresses in use than connections.
size_t AddressTableSize(int64_t requested, int64_t max_connections);

class AddressCounts {
 public:
  // Before any other call, from one thread: `capacity` addresses (1..kAddressTableMax),
  // `limit` connections each (>= 1).
  void Configure(size_t capacity, int64_t limit);
  bool configured() const { return limit_ > 0; }

  // Counts one connection from `key`: its slot, kAddressOverLimit or kAddressTableFull.
  int32_t Admit(const AddressKey& key);
  // Counts one connection from accept()'s `peer`, as both drivers do: kAddressNotCounted when
  // the peer is not limited (AddressKeyOf: a unix socket), else as Admit.
  int32_t AdmitPeer(const sockaddr_storage& peer, int ipv6_prefix);
  // One connection of `slot` ended. False (nothing changed) for a slot that counts nothing.
  bool Release(int32_t slot);
  // Addresses with at least one connection now.
  size_t InUse();

 private:
  struct Entry {
    AddressKey key;
    uint64_t hash;
    int64_t count;
  };

  uint64_t Hash(const AddressKey& key) const;
  void RemoveFromIndex(int32_t slot);

  std::mutex mutex_;
  int64_t limit_ = 0;
  size_t capacity_ = 0;
  size_t in_use_ = 0;
  uint64_t seed0_ = 0;
  uint64_t seed1_ = 0;
  std::vector<Entry> entries_;    // by slot
  std::vector<int32_t> free_;     // slots not in use
  std::vector<int32_t> index_;    // hash bucket -> slot + 1 (0: empty)
  size_t mask_ = 0;
};

}  // namespace ntl
