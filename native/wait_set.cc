#include "wait_set.h"

#include <cerrno>

#if NTL_LINUX_CALLS
#include <sys/epoll.h>
#include <unistd.h>
#endif

namespace ntl {

void WaitSet::MaybeClosed() {
#if NTL_LINUX_CALLS
  const bool holding = poll_open_;
#else
  const bool holding = handles_open_ > 0;
#endif
  if (closing_ && !holding && closed_ != nullptr) {
    Closed closed = closed_;
    closed_ = nullptr;
    closed(context_);
  }
}

#if NTL_LINUX_CALLS

namespace {
// Events taken per epoll_wait; more ready waits are taken on the next loop iteration (the set's
// descriptor stays readable).
constexpr int kEventsPerWake = 64;
}  // namespace

int WaitSet::Open(uv_loop_t* loop, Ready ready, Closed closed, void* context) {
  loop_ = loop;
  ready_ = ready;
  closed_ = closed;
  context_ = context;
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return -errno;
  int err = uv_poll_init(loop, &poll_, epoll_fd_);
  if (err != 0) {
    close(epoll_fd_);
    epoll_fd_ = -1;
    return err;
  }
  poll_.data = this;
  poll_open_ = true;
  err = uv_poll_start(&poll_, UV_READABLE, OnEpollReadable);
  if (err != 0) {
    Close();
    return err;
  }
  // Only waits keep the loop alive, as their own handles would (UpdateRef).
  uv_unref(reinterpret_cast<uv_handle_t*>(&poll_));
  open_ = true;
  return 0;
}

void WaitSet::UpdateRef() {
  auto* handle = reinterpret_cast<uv_handle_t*>(&poll_);
  if (by_key_.empty()) uv_unref(handle);
  else uv_ref(handle);
}

int WaitSet::Add(Watch* watch) {
  if (!open_) {
    delete watch;
    return UV_EBADF;
  }
  uint64_t key = next_key_++;
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = key;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, watch->fd, &event) != 0) {
    const int err = -errno;
    delete watch;
    return err;
  }
  watch->wait_key = key;
  by_key_.emplace(key, watch);
  if (by_key_.size() == 1) UpdateRef();
  return 0;
}

void WaitSet::Remove(Watch* watch) {
  by_key_.erase(watch->wait_key);
  // The descriptor is still open (the caller closes it or hands it on after this): its entry
  // goes now, so a descriptor handed on is polled by its new owner only. Failing, the entry goes
  // when the descriptor is closed, and a key no longer in by_key_ is skipped meanwhile.
  epoll_event unused{};
  (void)epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, watch->fd, &unused);
  delete watch;
  if (by_key_.empty()) UpdateRef();
}

void WaitSet::OnEpollReadable(uv_poll_t* handle, int status, int /*events*/) {
  auto* set = static_cast<WaitSet*>(handle->data);
  if (status != 0 || set->closing_) return;
  epoll_event events[kEventsPerWake];
  int count;
  do {
    count = epoll_wait(set->epoll_fd_, events, kEventsPerWake, 0);
  } while (count < 0 && errno == EINTR);
  for (int i = 0; i < count && !set->closing_; i++) {
    auto found = set->by_key_.find(events[i].data.u64);
    if (found == set->by_key_.end()) continue;
    set->ready_(set->context_, found->second, (events[i].events & EPOLLERR) != 0);
  }
}

void WaitSet::Close() {
  if (closing_) return;
  closing_ = true;
  open_ = false;
  if (poll_open_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), [](uv_handle_t* handle) {
      auto* set = static_cast<WaitSet*>(handle->data);
      close(set->epoll_fd_);
      set->epoll_fd_ = -1;
      set->poll_open_ = false;
      set->MaybeClosed();
    });
    return;
  }
  if (epoll_fd_ >= 0) close(epoll_fd_);
  epoll_fd_ = -1;
  MaybeClosed();
}

#else  // a uv_poll handle per wait

int WaitSet::Open(uv_loop_t* loop, Ready ready, Closed closed, void* context) {
  loop_ = loop;
  ready_ = ready;
  closed_ = closed;
  context_ = context;
  open_ = true;
  return 0;
}

int WaitSet::Add(Watch* watch) {
  if (!open_) {
    delete watch;
    return UV_EBADF;
  }
  // UV_EEXIST: this loop watches the fd already; nothing was done to it.
  int err = uv_poll_init(loop_, &watch->poll, watch->fd);
  if (err != 0) {
    delete watch;
    return err;
  }
  watch->poll.data = watch;
  watch->wait_set = this;
  handles_open_++;
  err = uv_poll_start(&watch->poll, UV_READABLE, OnPollReadable);
  if (err != 0) Remove(watch);  // the watch is freed once libuv is done with its handle
  return err;
}

void WaitSet::OnPollReadable(uv_poll_t* handle, int status, int /*events*/) {
  auto* watch = static_cast<Watch*>(handle->data);
  WaitSet* set = watch->wait_set;
  // libuv reports a socket error (EPOLLERR) as UV_EBADF and stops the poll.
  set->ready_(set->context_, watch, status != 0);
}

void WaitSet::OnWatchClosed(uv_handle_t* handle) {
  auto* watch = static_cast<Watch*>(handle->data);
  WaitSet* set = watch->wait_set;
  delete watch;
  set->handles_open_--;
  set->MaybeClosed();
}

void WaitSet::Remove(Watch* watch) {
  // uv_close removes the fd from the loop's epoll before returning, so another handle may open
  // it at once; the watch is freed once libuv is done with it.
  uv_close(reinterpret_cast<uv_handle_t*>(&watch->poll), OnWatchClosed);
}

void WaitSet::Close() {
  if (closing_) return;
  closing_ = true;
  open_ = false;
  MaybeClosed();
}

#endif

}  // namespace ntl
