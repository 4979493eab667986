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

bool ShouldCloseAfterBatch(uv_loop_t* loop, int32_t slot, int accepted, bool completed) {
  if (slot == accepted) return true;  // untouched: JS threw, closed, or could not run
  if (slot == kBatchSlotSettled) return false;
  if (slot == kBatchSlotTaken) return !completed && !OwnedByLoopHandle(loop, accepted);
  // Returned, or a value outside the protocol: ours, unless a handle got it before JS threw.
  return !OwnedByLoopHandle(loop, accepted);
}

}  // namespace ntl
