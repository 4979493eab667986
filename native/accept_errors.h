// What the acceptor does with each errno that accept() can fail with.
// The policy is a port of the original listener's retry set, minus its one flaw:
// descriptor exhaustion pauses accepting instead of stopping the server.
#pragma once

namespace ntl {

enum class AcceptErrorAction {
  kRetryNow,      // EINTR: the call was interrupted, nothing happened.
  kBatchDone,     // EAGAIN/EWOULDBLOCK: nothing more is pending; wait for readiness.
  kRetryCounted,  // a network error of the pending connection (accept(2): "treat like EAGAIN").
  kPause,         // out of descriptors or kernel memory: back off, then resume.
  kFatal,         // anything else: report and close the listener.
};

AcceptErrorAction ClassifyAcceptError(int err);

}  // namespace ntl
