#include "admission.h"

#include <netinet/in.h>

#include <cstring>

namespace ntl {

size_t AddressKeyHash::operator()(const AddressKey& key) const {
  // FNV-1a: the keys are short and attacker-chosen only in their low bytes; the table is
  // bounded by its capacity, so a poor spread costs time, never memory.
  uint64_t hash = 1469598103934665603ULL;
  for (uint8_t byte : key) {
    hash ^= byte;
    hash *= 1099511628211ULL;
  }
  return static_cast<size_t>(hash);
}

bool AddressKeyOf(const sockaddr_storage& peer, AddressKey* key) {
  key->fill(0);
  if (peer.ss_family == AF_INET) {
    const auto* addr = reinterpret_cast<const sockaddr_in*>(&peer);
    (*key)[10] = 0xff;
    (*key)[11] = 0xff;
    std::memcpy(key->data() + 12, &addr->sin_addr, 4);
    return true;
  }
  if (peer.ss_family == AF_INET6) {
    // An IPv4 client of a dual-stack socket arrives as ::ffff:a.b.c.d: the same key as above.
    const auto* addr = reinterpret_cast<const sockaddr_in6*>(&peer);
    std::memcpy(key->data(), &addr->sin6_addr, 16);
    return true;
  }
  return false;
}

void AddressTable::Reset(int32_t* counts, size_t capacity) {
  counts_ = counts;
  capacity_ = capacity;
  slots_.clear();
  free_.clear();
  slots_.reserve(capacity);
  free_.reserve(capacity);
  for (size_t i = capacity; i > 0; i--) free_.push_back(static_cast<int32_t>(i - 1));
}

void AddressTable::Reclaim() {
  for (auto it = slots_.begin(); it != slots_.end();) {
    if (counts_[it->second] <= 0) {
      counts_[it->second] = 0;
      free_.push_back(it->second);
      it = slots_.erase(it);
    } else {
      ++it;
    }
  }
}

int32_t AddressTable::SlotFor(const AddressKey& key) {
  auto found = slots_.find(key);
  if (found != slots_.end()) return found->second;
  if (free_.empty()) Reclaim();
  if (free_.empty()) return -1;
  int32_t slot = free_.back();
  free_.pop_back();
  counts_[slot] = 0;
  slots_.emplace(key, slot);
  return slot;
}

void AdmissionGate::Configure(const AdmissionLimits& limits, int32_t* counters, size_t length) {
  limits_ = limits;
  counters_ = counters;
  size_t capacity = length > kCounterFirstAddressSlot ? length - kCounterFirstAddressSlot : 0;
  addresses_.Reset(counters + kCounterFirstAddressSlot, capacity);
}

AdmissionReason AdmissionGate::Full() const {
  if (counters_ == nullptr) return AdmissionReason::kNone;
  if (limits_.max_connections > 0 && counters_[kCounterActive] >= limits_.max_connections) {
    return AdmissionReason::kMaxConnections;
  }
  if (limits_.max_pending_handshakes > 0 && counters_[kCounterHandshaking] >= limits_.max_pending_handshakes) {
    return AdmissionReason::kMaxPendingHandshakes;
  }
  return AdmissionReason::kNone;
}

bool AdmissionGate::Admit(const sockaddr_storage& peer, int32_t* slot) {
  *slot = -1;
  if (counters_ == nullptr) return true;
  if (limits_.max_connections_per_address > 0) {
    AddressKey key;
    if (AddressKeyOf(peer, &key)) {
      int32_t found = addresses_.SlotFor(key);
      int32_t* counts = counters_ + kCounterFirstAddressSlot;
      if (found >= 0 && counts[found] >= limits_.max_connections_per_address) return false;
      if (found >= 0) counts[found]++;
      *slot = found;
    }
  }
  counters_[kCounterActive]++;
  if (limits_.counts_handshakes) counters_[kCounterHandshaking]++;
  return true;
}

void AdmissionGate::Uncount(int32_t slot) {
  if (counters_ == nullptr) return;
  counters_[kCounterActive]--;
  if (limits_.counts_handshakes) counters_[kCounterHandshaking]--;
  if (slot >= 0) counters_[kCounterFirstAddressSlot + slot]--;
}

}  // namespace ntl
