#include "admission.h"

namespace ntl {

void AdmissionGate::Configure(const AdmissionLimits& limits, int32_t* counters, size_t length) {
  limits_ = limits;
  counters_ = length >= kCounterCount ? counters : nullptr;
  if (limits.max_connections_per_address > 0) {
    addresses_.Configure(AddressTableSize(limits.address_table_size, limits.max_connections),
                         limits.max_connections_per_address);
  }
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

Admitted AdmissionGate::Admit(const sockaddr_storage& peer, int32_t* slot) {
  *slot = kAddressNotCounted;
  if (counters_ == nullptr) return Admitted::kYes;
  if (limits_.max_connections_per_address > 0) {
    int32_t found = addresses_.AdmitPeer(peer, limits_.ipv6_prefix);
    if (found == kAddressOverLimit) return Admitted::kOverLimit;
    if (found == kAddressTableFull) return Admitted::kTableFull;
    *slot = found;
  }
  counters_[kCounterActive]++;
  if (limits_.counts_handshakes) counters_[kCounterHandshaking]++;
  return Admitted::kYes;
}

void AdmissionGate::Uncount(int32_t slot) {
  if (counters_ == nullptr) return;
  counters_[kCounterActive]--;
  if (limits_.counts_handshakes) counters_[kCounterHandshaking]--;
  if (slot >= 0) (void)addresses_.Release(slot);
}

}  // namespace ntl
