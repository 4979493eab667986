// The thread driver's accept thread (native/accept_thread.cc), started and stopped by the
// dispatcher (native/dispatcher.cc) on the thread that listens. Ownership: dispatch_state.h.
#pragma once

#include <memory>

#include "dispatch_state.h"

namespace ntl {

// Starts the accept thread (and makes its wake pipe). Returns 0, or an errno with the call
// that failed in `failed_call`; nothing is left open then.
int StartAcceptThread(const std::shared_ptr<DispatchShared>& shared, const char** failed_call);
// Stops and joins the accept thread, closes the listening and wake descriptors. Idempotent.
void StopAcceptThread(DispatchShared& shared);
// Wakes the accept thread (a queue joined or left, or stop).
void WakeAcceptThread(DispatchShared& shared);

}  // namespace ntl
