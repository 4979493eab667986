// maxConnectionsPerAddress for a listener served by workers: one table of per-address counts
// for the listener as a whole, shared by the accept thread and every worker thread.
//
// Who does what (the table has its own mutex, a leaf lock: nothing else is locked under it):
//  - the accept thread counts a connection in at accept (Admit, from accept4()'s peer), or
//    closes it at once when its address is at the limit; with proxyProtocol the worker that read
//    the header counts the client the header names in instead (same Admit, from its text);
//  - whichever thread ends the connection counts it out (Release) by the slot Admit returned:
//    a worker's JS when its registry releases the connection (through its queue, which checks
//    the slot is one it holds), a queue closing descriptors no socket took, a worker's
//    retirement for every connection its thread still held, the accept thread for a batch it
//    drops when the listener stops. The per-queue record of held slots is in QueueShared.
// A slot is freed when its count returns to 0, so the table holds only addresses in use.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "admission.h"

namespace ntl {

// What Admit returns when the address is at the limit (a slot is >= 0; -1 means "not counted").
constexpr int32_t kAddressOverLimit = -2;
constexpr int32_t kAddressNotCounted = -1;

class AddressCounts {
 public:
  // Counts one connection from `key` unless it already has `limit`: its slot, or kAddressOverLimit.
  int32_t Admit(const AddressKey& key, int64_t limit);
  // One connection of `slot` ended. False (nothing changed) for a slot that counts nothing.
  bool Release(int32_t slot);
  // Addresses with at least one connection now.
  size_t InUse();

 private:
  std::mutex mutex_;
  std::unordered_map<AddressKey, int32_t, AddressKeyHash> slots_;
  std::vector<int64_t> counts_;
  std::vector<AddressKey> keys_;
  std::vector<int32_t> free_;
};

// An address as text (a PROXY header's client: dotted IPv4, or IPv6, IPv4-mapped included) as
// the key accept()'s peer would have; false when it is neither.
bool AddressKeyOfText(const std::string& text, AddressKey* key);

}  // namespace ntl
