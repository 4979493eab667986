// Per-environment addon state, as better-sqlite3's Addon: one per environment that loaded the
// addon (the main thread, each worker thread), kept as that environment's N-API instance data.
// It knows every live native handle made in its environment and closes them all from its ONE
// environment cleanup hook, when the environment goes away (a worker ending however it ends, or
// the process's main environment being freed): no handle kind keeps a hook of its own.
//
// The one handle-lifetime pattern, shared by every handle kind (the acceptor's loop, the
// dispatcher's main-loop side, a worker's queue and its books, the ClientHello peeker):
//  - the native part of a handle lives on the heap apart from its JS object (libuv handles
//    finish closing on a later loop turn, possibly after the object was collected) and derives
//    from EnvResource;
//  - Attach(env), as soon as it exists, registers it with its environment's Addon; its
//    destructor, which runs once libuv is done with every handle it had, unregisters it;
//  - CloseAtTeardown() closes it without calling into JS (JS cannot run any more); the JS
//    close(), the JS object's finalizer and the teardown all take the same closing path.
// The environment's teardown waits (an async cleanup hook) until the last resource is freed, so
// nothing of the addon is left on a loop that is about to be freed.
#pragma once

#include <napi.h>
#include <uv.h>

#include <unordered_set>

namespace ntl {

class EnvResource;

class Addon {
 public:
  // Made once per environment by the module's Init; throws when N-API refuses the instance data
  // or the cleanup hook.
  static void Install(Napi::Env env);
  // The Addon of `env`; throws when Install never ran there (cannot happen once the module loaded).
  static Addon& Of(Napi::Env env);

  Addon(const Addon&) = delete;
  Addon& operator=(const Addon&) = delete;

  // The environment's libuv loop, where its handles live.
  uv_loop_t* loop() const { return loop_; }

 private:
  friend class EnvResource;
  Addon() = default;

  void Add(EnvResource* resource) { live_.insert(resource); }
  void Remove(EnvResource* resource);
  // Tells Node the environment may finish tearing down once nothing of ours is left.
  void FinishTeardownIfDone();

  static void OnTeardown(napi_async_cleanup_hook_handle handle, void* arg);
  static void Finalize(napi_env env, void* data, void* hint);

  uv_loop_t* loop_ = nullptr;
  std::unordered_set<EnvResource*> live_;
  napi_async_cleanup_hook_handle hook_ = nullptr;
  bool tearing_down_ = false;
  // The instance data's finalizer ran with resources still alive (it should not: the hook holds
  // the environment until they are gone): the last of them frees the Addon.
  bool orphaned_ = false;
};

class EnvResource {
 public:
  EnvResource(const EnvResource&) = delete;
  EnvResource& operator=(const EnvResource&) = delete;

  // The environment is going away: close every handle, with no JS call. The resource is deleted
  // (by its own close path) once libuv is done with its handles: now, or on a later loop turn.
  virtual void CloseAtTeardown() = 0;

  // Registers with the Addon of `env`; throws (nothing registered) when there is none. Called
  // once, as soon as the resource exists.
  void Attach(Napi::Env env);

 protected:
  EnvResource() = default;
  virtual ~EnvResource();

 private:
  Addon* addon_ = nullptr;
};

}  // namespace ntl
