// What the acceptor does with each errno that accept() can fail with.
// The policy is a port of the original listener's retry set, minus its flaws: descriptor
// exhaustion pauses accepting instead of stopping the server, and the other errors of one
// pending connection that accept(2) lists (EPERM, ETIMEDOUT, ...) are retried too.
#pragma once

namespace ntl {

enum class AcceptErrorAction {
  kRetryNow,      // EINTR: the call was interrupted, nothing happened.
  kBatchDone,     // EAGAIN/EWOULDBLOCK: nothing more is pending; wait for readiness.
  kRetryCounted,  // an error of one pending connection (accept(2): "treat like EAGAIN").
  kPause,         // out of descriptors or kernel memory: back off, then resume.
  kFatal,         // anything else: report and close the listener.
};

AcceptErrorAction ClassifyAcceptError(int err);

// How many times in a row accept() failed with the same retried errno. Some of them leave the
// connection queued (EPERM from a security hook fails before anything is dequeued), so the
// socket stays readable and each call fails the same way: retried blindly, a busy loop. The
// acceptor backs off once the streak reaches kLimit, and while it lasts (one call per resume).
class RetryStreak {
 public:
  static constexpr int kLimit = 16;

  // Records one retried failure; true when `err` has now failed kLimit or more times in a row.
  bool Record(int err);
  // An accepted connection or a drained queue (EAGAIN) ends the streak.
  void Reset();

 private:
  int errno_ = 0;
  int length_ = 0;
};

}  // namespace ntl
