#include "address_counts.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <climits>
#include <cstring>

namespace ntl {

int32_t AddressCounts::Admit(const AddressKey& key, int64_t limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = slots_.find(key);
  if (found != slots_.end()) {
    int64_t& count = counts_[static_cast<size_t>(found->second)];
    if (count >= limit) return kAddressOverLimit;
    count++;
    return found->second;
  }
  int32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
    keys_[static_cast<size_t>(slot)] = key;
    counts_[static_cast<size_t>(slot)] = 1;
  } else {
    // One slot per address with a live connection: bounded by the descriptors in use.
    if (counts_.size() >= static_cast<size_t>(INT32_MAX)) return kAddressNotCounted;
    slot = static_cast<int32_t>(counts_.size());
    keys_.push_back(key);
    counts_.push_back(1);
  }
  slots_.emplace(key, slot);
  return slot;
}

bool AddressCounts::Release(int32_t slot) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (slot < 0 || static_cast<size_t>(slot) >= counts_.size() || counts_[static_cast<size_t>(slot)] <= 0) return false;
  if (--counts_[static_cast<size_t>(slot)] == 0) {
    slots_.erase(keys_[static_cast<size_t>(slot)]);
    free_.push_back(slot);
  }
  return true;
}

size_t AddressCounts::InUse() {
  std::lock_guard<std::mutex> lock(mutex_);
  return slots_.size();
}

bool AddressKeyOfText(const std::string& text, AddressKey* key) {
  sockaddr_storage storage;
  std::memset(&storage, 0, sizeof storage);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    storage.ss_family = AF_INET;
  } else if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    storage.ss_family = AF_INET6;
  } else {
    return false;
  }
  return AddressKeyOf(storage, key);
}

}  // namespace ntl
