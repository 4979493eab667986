#include "dispatcher_registry.h"

#include <map>
#include <mutex>

#include "dispatch_state.h"

namespace ntl {
namespace {

// Process-wide on purpose (dispatcher_registry.h): weak references, never owners.
std::mutex g_registry_mutex;
std::map<int, std::weak_ptr<DispatchShared>> g_registry;
int g_next_id = 1;

}  // namespace

void RegisterDispatcher(const std::shared_ptr<DispatchShared>& shared) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  shared->id = g_next_id++;
  g_registry[shared->id] = shared;
}

std::shared_ptr<DispatchShared> FindDispatcher(int id) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  auto found = g_registry.find(id);
  return found == g_registry.end() ? nullptr : found->second.lock();
}

void UnregisterDispatcher(int id) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  g_registry.erase(id);
}

}  // namespace ntl
