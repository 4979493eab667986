// What the acceptor does with each errno that accept() can fail with.
// The policy is a port of the original listener's retry set, minus its flaws: descriptor
// exhaustion pauses accepting instead of stopping the server, and the other errors of one
// pending connection that accept(2) lists (EPERM, ETIMEDOUT, ...) are retried too.
#pragma once

#include <cstddef>
#include <vector>

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

// One batch of accept() calls under the policy above, as both accept loops run it (the
// acceptor on its thread's libuv loop, native/acceptor.cc; the accept thread that feeds
// worker threads, native/accept_thread.cc). Each loop accepts, counts and reports in its own
// way; how a failed call ends the batch, and when the batch backs off, is decided here.
class AcceptBatch {
 public:
  // `limit`: accept() calls (accepted or retried) at most; `fatal_errno`: an error known
  // before the first call (the poll's own), or 0.
  AcceptBatch(size_t limit, int fatal_errno = 0) : limit_(limit), fatal_errno_(fatal_errno) {}

  // Whether another accept() may be made (no error has ended the batch, the limit not reached).
  bool Open() const { return !ended_ && fatal_errno_ == 0 && attempts_ < limit_; }
  // A connection was accepted: it counts against the limit and ends the retry streak.
  void Accepted(RetryStreak& streak);
  // accept() failed with `err`: updates the streak and what was retried; false when the batch
  // ends here (the queue is empty, a pause, a fatal error).
  bool Failed(int err, RetryStreak& streak);
  // After the last call: a whole batch of retries with nothing accepted (errnos that take turns,
  // so no streak) would find the same when polled again at once, so it backs off too.
  void Finish(bool accepted_any);

  // Retried errnos, in order (each counted and reported after the batch, so connections
  // accepted first are not delayed).
  const std::vector<int>& retried() const { return retried_; }
  bool drained() const { return drained_; }  // ended by EAGAIN: the queue was empty
  bool paused() const { return pause_errno_ != 0; }
  int pause_errno() const { return pause_errno_; }
  int fatal_errno() const { return fatal_errno_; }

 private:
  size_t limit_;
  size_t attempts_ = 0;
  std::vector<int> retried_;
  bool ended_ = false;
  bool drained_ = false;
  int pause_errno_ = 0;
  int fatal_errno_;
};

}  // namespace ntl
