#include "accept_errors.h"

#include <cerrno>

namespace ntl {

// Every errno is guarded: not every platform defines every name (macOS has no ENONET), and
// on Linux EAGAIN == EWOULDBLOCK and EOPNOTSUPP == ENOTSUP, so a switch would not compile.
AcceptErrorAction ClassifyAcceptError(int err) {
  if (err == EINTR) return AcceptErrorAction::kRetryNow;
  if (err == EAGAIN) return AcceptErrorAction::kBatchDone;
#ifdef EWOULDBLOCK
  if (err == EWOULDBLOCK) return AcceptErrorAction::kBatchDone;
#endif

  // The original's set (the network errors accept(2) says to treat like EAGAIN), then what
  // else accept(2) lists for one pending connection: EPERM (a firewall rule or security module
  // refused it), ETIMEDOUT, ENOSR, ESOCKTNOSUPPORT, EPROTONOSUPPORT. None says the listening
  // socket is broken, so none may close it and every connection with it.
  static const int kRetrySet[] = {
#ifdef ECONNABORTED
      ECONNABORTED,
#endif
#ifdef ENETDOWN
      ENETDOWN,
#endif
#ifdef EPROTO
      EPROTO,
#endif
#ifdef ENOPROTOOPT
      ENOPROTOOPT,
#endif
#ifdef EHOSTDOWN
      EHOSTDOWN,
#endif
#ifdef ENONET
      ENONET,
#endif
#ifdef EHOSTUNREACH
      EHOSTUNREACH,
#endif
#ifdef EOPNOTSUPP
      EOPNOTSUPP,
#endif
#ifdef ENETUNREACH
      ENETUNREACH,
#endif
#ifdef EPERM
      EPERM,
#endif
#ifdef ETIMEDOUT
      ETIMEDOUT,
#endif
#ifdef ENOSR
      ENOSR,
#endif
#ifdef ESOCKTNOSUPPORT
      ESOCKTNOSUPPORT,
#endif
#ifdef EPROTONOSUPPORT
      EPROTONOSUPPORT,
#endif
  };
  for (int retryable : kRetrySet) {
    if (err == retryable) return AcceptErrorAction::kRetryCounted;
  }

  static const int kPauseSet[] = {
#ifdef EMFILE
      EMFILE,
#endif
#ifdef ENFILE
      ENFILE,
#endif
#ifdef ENOBUFS
      ENOBUFS,
#endif
#ifdef ENOMEM
      ENOMEM,
#endif
  };
  for (int exhausted : kPauseSet) {
    if (err == exhausted) return AcceptErrorAction::kPause;
  }
  // What is left means the listening socket itself is unusable (EBADF, EINVAL: not listening,
  // ENOTSOCK, EFAULT) or an errno accept(2) does not document: retrying cannot help.
  return AcceptErrorAction::kFatal;
}

bool RetryStreak::Record(int err) {
  if (err != errno_) {
    errno_ = err;
    length_ = 0;
  }
  return ++length_ >= kLimit;
}

void RetryStreak::Reset() {
  errno_ = 0;
  length_ = 0;
}

void AcceptBatch::Accepted(RetryStreak& streak) {
  attempts_++;
  streak.Reset();
}

bool AcceptBatch::Failed(int err, RetryStreak& streak) {
  switch (ClassifyAcceptError(err)) {
    case AcceptErrorAction::kRetryNow:
      return true;
    case AcceptErrorAction::kBatchDone:
      streak.Reset();
      drained_ = true;
      break;
    case AcceptErrorAction::kRetryCounted:
      // Retries count against the limit too, so a socket that keeps failing cannot hold the loop.
      attempts_++;
      retried_.push_back(err);
      // The same errno again and again: most likely one connection failing on every call.
      if (!streak.Record(err)) return true;
      pause_errno_ = err;
      break;
    case AcceptErrorAction::kPause:
      pause_errno_ = err;
      break;
    case AcceptErrorAction::kFatal:
      fatal_errno_ = err;
      break;
  }
  ended_ = true;
  return false;
}

void AcceptBatch::Finish(bool accepted_any) {
  if (!paused() && fatal_errno_ == 0 && !accepted_any && !retried_.empty() && attempts_ >= limit_) {
    pause_errno_ = retried_.back();
  }
}

}  // namespace ntl
