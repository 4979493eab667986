// How the HelloPeeker's waiting descriptors are polled (native/hello_peek.cc): which of them the
// loop wakes for, and when a wait's struct may be freed.
//
// On Linux the waits share one epoll instance of their own, which one uv_poll handle watches:
// a wait is one epoll_ctl(ADD) when it starts and one epoll_ctl(DEL) when it ends, and one
// epoll_wait serves every wait that turned readable in a loop iteration. A uv_poll handle per
// wait (the portable path, where there is no epoll, or with NTL_FORCE_PORTABLE) costs five system
// calls per wait instead: uv_poll_init's check that the descriptor can be polled (an ADD and a
// DEL on the loop's epoll) and its ioctl(FIONBIO), then the ADD when polling starts and the DEL
// when the handle closes. Counted per connection (perf stat, raw_syscalls) with `alpn` at 64 in
// flight, where most hellos come after the accept: 30.5 system calls with a handle per wait, 25.3
// with the set, and 23.2 without `alpn` (no wait at all).
//
// Both are level-triggered: a wait is reported on every loop iteration while its socket is
// readable (SO_RCVLOWAT decides when that is, native/peek_wait.h), until it is removed.
//
// Ownership: Add() takes no ownership of the descriptor, which stays the HelloPeeker's; Remove()
// stops polling it (close it after, or hand it on) and frees the Watch, at once or once libuv is
// done with its handle. The set outlives its owner until Close()'s callback.
#pragma once

#include <uv.h>

#include <cstdint>
#include <unordered_map>

#include "peek_wait.h"
#include "platform.h"

namespace ntl {

class WaitSet {
 public:
  // A wait turned readable, or its socket has an error (`error`). The callback may Remove() any
  // wait, this one included, and may Close() the set.
  using Ready = void (*)(void* context, Watch* watch, bool error);
  // The set has let go of every libuv handle: it may be freed.
  using Closed = void (*)(void* context);

  WaitSet() = default;
  WaitSet(const WaitSet&) = delete;
  WaitSet& operator=(const WaitSet&) = delete;

  // 0, or a libuv error (the set is then unusable, and Close() calls back at once).
  int Open(uv_loop_t* loop, Ready ready, Closed closed, void* context);
  // Starts polling watch->fd and takes the watch: 0, or a libuv error, and then the watch is
  // freed and the descriptor is as it was (still the caller's).
  int Add(Watch* watch);
  // Stops polling the watch's descriptor and frees the watch.
  void Remove(Watch* watch);
  // No more Add(); every wait must have been removed. `closed` is called once the set holds no
  // libuv handle (possibly before Close returns).
  void Close();
  bool open() const { return open_; }

 private:
#if NTL_LINUX_CALLS
  static void OnEpollReadable(uv_poll_t* handle, int status, int events);
  void UpdateRef();

  int epoll_fd_ = -1;
  uv_poll_t poll_{};
  bool poll_open_ = false;
  // Waits by the key their epoll entry carries: a key no longer here is a wait removed while
  // its event was pending (removed by the callback of an earlier event of the same batch).
  std::unordered_map<uint64_t, Watch*> by_key_;
  uint64_t next_key_ = 1;
#else
  static void OnPollReadable(uv_poll_t* handle, int status, int events);
  static void OnWatchClosed(uv_handle_t* handle);
  size_t handles_open_ = 0;
#endif
  void MaybeClosed();

  uv_loop_t* loop_ = nullptr;
  Ready ready_ = nullptr;
  Closed closed_ = nullptr;
  void* context_ = nullptr;
  bool open_ = false;
  bool closing_ = false;
};

}  // namespace ntl
