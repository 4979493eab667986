#include "address_counts.h"

#include <cstring>
#include <random>

namespace ntl {

namespace {

uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

void SipRound(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1;
  v1 = Rotl(v1, 13);
  v1 ^= v0;
  v0 = Rotl(v0, 32);
  v2 += v3;
  v3 = Rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = Rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = Rotl(v1, 17);
  v1 ^= v2;
  v2 = Rotl(v2, 32);
}

}  // namespace

// SipHash-2-4 of the 16 key bytes.
uint64_t AddressCounts::Hash(const AddressKey& key) const {
  uint64_t v0 = seed0_ ^ 0x736f6d6570736575ULL;
  uint64_t v1 = seed1_ ^ 0x646f72616e646f6dULL;
  uint64_t v2 = seed0_ ^ 0x6c7967656e657261ULL;
  uint64_t v3 = seed1_ ^ 0x7465646279746573ULL;
  for (int block = 0; block < 2; block++) {
    uint64_t m = 0;
    for (int i = 7; i >= 0; i--) m = (m << 8) | key[static_cast<size_t>(block * 8 + i)];
    v3 ^= m;
    SipRound(v0, v1, v2, v3);
    SipRound(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t last = static_cast<uint64_t>(16) << 56;
  v3 ^= last;
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  v0 ^= last;
  v2 ^= 0xff;
  for (int i = 0; i < 4; i++) SipRound(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

size_t AddressTableSize(int64_t requested, int64_t max_connections) {
  int64_t size = requested > 0 ? requested : max_connections > 0 ? max_connections : static_cast<int64_t>(kAddressTableMax);
  return size > static_cast<int64_t>(kAddressTableMax) ? kAddressTableMax : static_cast<size_t>(size);
}

void AddressCounts::Configure(size_t capacity, int64_t limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  capacity_ = capacity < 1 ? 1 : capacity > kAddressTableMax ? kAddressTableMax : capacity;
  limit_ = limit < 1 ? 1 : limit;
  std::random_device random;
  seed0_ = (static_cast<uint64_t>(random()) << 32) ^ random();
  seed1_ = (static_cast<uint64_t>(random()) << 32) ^ random();
  size_t buckets = 2;
  while (buckets < 2 * capacity_) buckets <<= 1;
  index_.assign(buckets, 0);
  mask_ = buckets - 1;
  entries_.clear();
  entries_.reserve(capacity_);
  free_.clear();
  free_.reserve(capacity_);
  in_use_ = 0;
}

int32_t AddressCounts::Admit(const AddressKey& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (limit_ == 0) return kAddressNotCounted;
  uint64_t hash = Hash(key);
  size_t bucket = hash & mask_;
  // At most half full: an empty bucket ends every probe.
  while (index_[bucket] != 0) {
    int32_t slot = index_[bucket] - 1;
    Entry& entry = entries_[static_cast<size_t>(slot)];
    if (entry.hash == hash && entry.key == key) {
      if (entry.count >= limit_) return kAddressOverLimit;
      entry.count++;
      return slot;
    }
    bucket = (bucket + 1) & mask_;
  }
  if (in_use_ >= capacity_) return kAddressTableFull;
  int32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
    entries_[static_cast<size_t>(slot)] = Entry{key, hash, 1};
  } else {
    slot = static_cast<int32_t>(entries_.size());
    entries_.push_back(Entry{key, hash, 1});  // within the reserved capacity: no reallocation
  }
  index_[bucket] = slot + 1;
  in_use_++;
  return slot;
}

void AddressCounts::RemoveFromIndex(int32_t slot) {
  size_t hole = entries_[static_cast<size_t>(slot)].hash & mask_;
  for (size_t probes = 0; index_[hole] != slot + 1; probes++) {
    if (probes > mask_) return;  // not indexed: cannot happen for a slot in use
    hole = (hole + 1) & mask_;
  }
  // Backward shift: every entry after the hole that may live there moves back, so no probe
  // ever stops early at the emptied bucket.
  for (size_t next = (hole + 1) & mask_; index_[next] != 0; next = (next + 1) & mask_) {
    size_t home = entries_[static_cast<size_t>(index_[next] - 1)].hash & mask_;
    if (((next - home) & mask_) >= ((next - hole) & mask_)) {
      index_[hole] = index_[next];
      hole = next;
    }
  }
  index_[hole] = 0;
}

int32_t AddressCounts::AdmitPeer(const sockaddr_storage& peer, int ipv6_prefix) {
  AddressKey key;
  if (!AddressKeyOf(peer, ipv6_prefix, &key)) return kAddressNotCounted;
  return Admit(key);
}

bool AddressCounts::Release(int32_t slot) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (slot < 0 || static_cast<size_t>(slot) >= entries_.size()) return false;
  Entry& entry = entries_[static_cast<size_t>(slot)];
  if (entry.count <= 0) return false;
  if (--entry.count > 0) return true;
  RemoveFromIndex(slot);
  free_.push_back(slot);
  in_use_--;
  return true;
}

size_t AddressCounts::InUse() {
  std::lock_guard<std::mutex> lock(mutex_);
  return in_use_;
}

}  // namespace ntl
