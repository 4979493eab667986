#include "accept_errors.h"

#include <cerrno>

namespace ntl {

// Every errno is guarded: not every platform defines every name (macOS has no ENONET),
// and on Linux EAGAIN == EWOULDBLOCK and EOPNOTSUPP == ENOTSUP, so a switch would not compile.
AcceptErrorAction ClassifyAcceptError(int err) {
  if (err == EINTR) return AcceptErrorAction::kRetryNow;
  if (err == EAGAIN) return AcceptErrorAction::kBatchDone;
#ifdef EWOULDBLOCK
  if (err == EWOULDBLOCK) return AcceptErrorAction::kBatchDone;
#endif

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
  return AcceptErrorAction::kFatal;
}

}  // namespace ntl
