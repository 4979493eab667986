#include "addon.h"

#include <vector>

namespace ntl {

void Addon::Install(Napi::Env env) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    throw Napi::Error::New(env, "no libuv loop for this environment");
  }
  auto* addon = new Addon();
  addon->loop_ = loop;
  if (napi_set_instance_data(env, addon, Finalize, nullptr) != napi_ok) {
    delete addon;
    throw Napi::Error::New(env, "napi_set_instance_data failed");
  }
  // From here the instance data's finalizer frees the Addon, hook or not.
  if (napi_add_async_cleanup_hook(env, OnTeardown, addon, &addon->hook_) != napi_ok) {
    addon->hook_ = nullptr;
    throw Napi::Error::New(env, "napi_add_async_cleanup_hook failed");
  }
}

Addon& Addon::Of(Napi::Env env) {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) != napi_ok || data == nullptr) {
    throw Napi::Error::New(env, "the addon has no state for this environment");
  }
  return *static_cast<Addon*>(data);
}

void Addon::Remove(EnvResource* resource) {
  live_.erase(resource);
  if (orphaned_ && live_.empty()) {
    delete this;
    return;
  }
  FinishTeardownIfDone();
}

void Addon::FinishTeardownIfDone() {
  if (!tearing_down_ || !live_.empty() || hook_ == nullptr) return;
  napi_async_cleanup_hook_handle hook = hook_;
  hook_ = nullptr;
  // Fails only for a hook that is not registered; there is nothing to undo either way.
  (void)napi_remove_async_cleanup_hook(hook);
}

void Addon::OnTeardown(napi_async_cleanup_hook_handle, void* arg) {
  auto* addon = static_cast<Addon*>(arg);
  addon->tearing_down_ = true;
  // Closing one resource can free others (or itself) at once: each is looked up again first.
  const std::vector<EnvResource*> snapshot(addon->live_.begin(), addon->live_.end());
  for (EnvResource* resource : snapshot) {
    if (addon->live_.count(resource) != 0) resource->CloseAtTeardown();
  }
  addon->FinishTeardownIfDone();
}

void Addon::Finalize(napi_env, void* data, void*) {
  auto* addon = static_cast<Addon*>(data);
  if (addon->live_.empty()) {
    delete addon;
  } else {
    addon->orphaned_ = true;
  }
}

EnvResource::~EnvResource() {
  if (addon_ != nullptr) addon_->Remove(this);
}

void EnvResource::Attach(Napi::Env env) {
  Addon& addon = Addon::Of(env);
  addon.Add(this);
  addon_ = &addon;
}

}  // namespace ntl
