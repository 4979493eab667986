#include "batch_slots.h"

namespace ntl {
namespace {

struct HandleSearch {
  int fd;
  bool found;
};

}  // namespace

bool OwnedByLoopHandle(uv_loop_t* loop, int fd) {
  HandleSearch search{fd, false};
  uv_walk(
      loop,
      [](uv_handle_t* handle, void* arg) {
        auto* wanted = static_cast<HandleSearch*>(arg);
        if (handle->type != UV_TCP && handle->type != UV_NAMED_PIPE) return;
        uv_os_fd_t handle_fd = -1;
        if (uv_fileno(handle, &handle_fd) == 0 && handle_fd == wanted->fd) wanted->found = true;
      },
      &search);
  return search.found;
}

// Always decided about `accepted`, the fd accept() returned, never about the number in the slot.
bool ShouldCloseAfterBatch(uv_loop_t* loop, int32_t slot, int accepted, bool completed) {
  // Untouched (JS threw, the listener closed during the callback, or JS could not run).
  if (slot == accepted) return true;
  if (slot == kBatchSlotSettled) return false;
  // Taken, and the callback ran to its end: JS settled it some other way. Cut short (a worker
  // terminated mid-batch) before a socket's handle came to own it: nobody else will ever close
  // it. One that a handle does own is left to that handle.
  if (slot == kBatchSlotTaken) return !completed && !OwnedByLoopHandle(loop, accepted);
  // Returned (JS could not wrap it), or a value outside the protocol: ours, unless an adopter
  // got as far as giving it to a handle before it threw.
  return !OwnedByLoopHandle(loop, accepted);
}

}  // namespace ntl
