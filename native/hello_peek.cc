#include "hello_peek.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "addon.h"
#include "arguments.h"
#include "hello_parse.h"
#include "js_callback.h"
#include "js_values.h"
#include "peek_outcome.h"
#include "platform.h"
#include "peek_wait.h"
#include "proxy_frame.h"
#include "wait_set.h"

namespace ntl {

// One per HelloPeeker. Outlives it while libuv still holds a handle of its waits. An
// EnvResource of its environment (native/addon.h) until freed.
struct PeekSet final : public EnvResource {
  // Closes every wait (their descriptors with them), with no JS call.
  void CloseAtTeardown() override;

  napi_env env = nullptr;
  uv_loop_t* loop = nullptr;
  Napi::FunctionReference on_hello;
  Napi::FunctionReference on_header;
  std::unique_ptr<Napi::AsyncContext> async_context;
  AlpnLists alpn_lists;
  std::unordered_map<uint32_t, Watch*> waiting;
  // Polls the waiting descriptors (native/wait_set.h); holds libuv handles until waits_closed.
  WaitSet waits;
  bool waits_closed = false;
  bool closed = false;     // no more watches; waiting ones were closed
  bool orphaned = false;   // its HelloPeeker is gone (collected) or the environment is
  // The HelloPeeker's pointer to this set, cleared when the set is freed first (the teardown
  // hook can run before the wrapper's finalizer).
  PeekSet** owner_slot = nullptr;
};

namespace {

constexpr size_t kMaxAlpnLists = 4;
constexpr int64_t kMaxToken = INT32_MAX;

void MaybeFree(PeekSet* set) {
  if (!set->orphaned || !set->waits_closed) return;
  if (set->owner_slot != nullptr) *set->owner_slot = nullptr;
  delete set;
}

void OnWaitsClosed(void* context) {
  auto* set = static_cast<PeekSet*>(context);
  set->waits_closed = true;
  MaybeFree(set);
}

// Stops polling and frees the watch; the descriptor is left as it is (the caller closes it or
// hands it over after this).
void EndWatch(Watch* watch) {
  PeekSet* set = watch->set;
  set->waiting.erase(watch->token);
  set->waits.Remove(watch);
}

void CloseAll(PeekSet* set) {
  set->closed = true;
  auto waiting = std::move(set->waiting);
  set->waiting.clear();
  for (auto& entry : waiting) {
    Watch* watch = entry.second;
    const int fd = watch->fd;
    set->waits.Remove(watch);
    close(fd);
  }
  set->waits.Close();
}

// Nobody can take a descriptor any more (the HelloPeeker was collected, or its environment is
// going away): every wait is closed, and the set is freed once libuv is done with it.
void Orphan(PeekSet* set) {
  CloseAll(set);
  set->on_hello.Reset();
  set->on_header.Reset();
  set->async_context.reset();
  set->orphaned = true;
  MaybeFree(set);
}

// Hands the descriptor to JS. When JS cannot run (the environment is going away) nobody will
// take it, so it is closed here.
void Deliver(PeekSet* set, Watch* watch, const Outcome& outcome) {
  RestoreLowWater(watch);
  const int fd = watch->fd;
  const uint32_t token = watch->token;
  const bool header = watch->proxy_versions != 0;
  Napi::FunctionReference& callback = header ? set->on_header : set->on_hello;
  const std::vector<uint8_t> taken = std::move(watch->taken);
  EndWatch(watch);
  napi_env env = set->env;
  napi_handle_scope scope = nullptr;
  if (callback.IsEmpty() || napi_open_handle_scope(env, &scope) != napi_ok) {
    close(fd);
    return;
  }
  std::vector<napi_value> argv;
  // Once called, the descriptor is JS's whatever the callback did (it catches its own errors).
  bool called = false;
  if (OutcomeArguments(env, token, header, outcome, taken, argv)) {
    (void)CallJsCallback(env, *set->async_context, callback, argv.size(), argv.data(), &called);
  }
  if (!called) close(fd);
  (void)napi_close_handle_scope(env, scope);
}

// A wait turned readable (WaitSet's callback).
void OnReady(void* /*context*/, Watch* watch, bool error) {
  Outcome outcome;
  // On a socket error (EPOLLERR), whatever the peek finds, the wait is over. When the reset came
  // with bytes the peek had not seen, the peek met no error: it is read here, or the socket's
  // reader would see those bytes then an end.
  if (Peek(watch, true, watch->set->alpn_lists, outcome) == PeekResult::kWait && !error) return;
  if (error && outcome.err == 0) TakeSocketError(watch->fd, outcome);
  Deliver(watch->set, watch, outcome);
}

}  // namespace

void PeekSet::CloseAtTeardown() { Orphan(this); }

class HelloPeeker : public Napi::ObjectWrap<HelloPeeker> {
 public:
  explicit HelloPeeker(const Napi::CallbackInfo& info);
  ~HelloPeeker() override;

 private:
  friend Napi::Function DefineHelloPeeker(Napi::Env env);
  Napi::Value Watch(const Napi::CallbackInfo& info);
  Napi::Value WatchUnlessParsed(const Napi::CallbackInfo& info);
  // watch() and watchUnlessParsed(): `parsed_returns`, a hello parsed at once is returned.
  Napi::Value StartWatch(const Napi::CallbackInfo& info, bool parsed_returns);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  PeekSet* set_ = nullptr;
};

HelloPeeker::HelloPeeker(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HelloPeeker>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsFunction() || !info[2].IsFunction()) {
    throw InvalidArgument(env, true, "new HelloPeeker(alpnLists: Buffer[], onHello: function, onHeader: function)");
  }
  Napi::Array lists = info[0].As<Napi::Array>();
  if (lists.Length() > kMaxAlpnLists) throw InvalidArgument(env, false, "at most 4 ALPN lists");
  auto set = std::make_unique<PeekSet>();
  set->Attach(env);
  for (uint32_t i = 0; i < lists.Length(); i++) {
    Napi::Value value = lists.Get(i);
    if (!value.IsBuffer()) throw InvalidArgument(env, true, "each ALPN list must be a Buffer");
    Napi::Buffer<uint8_t> wire = value.As<Napi::Buffer<uint8_t>>();
    std::vector<std::string> names;
    const bool whole = wire.Length() == 0 || ForEachAlpnProtocol(wire.Data(), wire.Length(), [&](const uint8_t* name, size_t length) {
      names.emplace_back(reinterpret_cast<const char*>(name), length);
      return name + length == wire.Data() + wire.Length();  // stop (true) after the last one
    });
    if (!whole) throw InvalidArgument(env, false, "an ALPN list is not in the wire format (length-prefixed names)");
    set->alpn_lists.push_back(std::move(names));
  }
  set->loop = Addon::Of(env).loop();
  set->env = env;
  const int err = set->waits.Open(set->loop, OnReady, OnWaitsClosed, set.get());
  if (err != 0) {
    // Freed once the waits have let go of any handle (OnWaitsClosed).
    PeekSet* failed = set.release();
    failed->orphaned = true;
    failed->waits.Close();
    throw UvError(env, err, "uv_poll");
  }
  set->on_hello = Napi::Persistent(info[1].As<Napi::Function>());
  set->on_header = Napi::Persistent(info[2].As<Napi::Function>());
  set->async_context = std::make_unique<Napi::AsyncContext>(env, "native-tls-listener:client-hello");
  set_ = set.release();
  set_->owner_slot = &set_;
}

HelloPeeker::~HelloPeeker() {
  // Collected: nobody can take a descriptor any more; the hook may have run already.
  if (set_ == nullptr) return;
  set_->owner_slot = nullptr;
  if (!set_->orphaned) Orphan(set_);
}

Napi::Value HelloPeeker::Watch(const Napi::CallbackInfo& info) { return StartWatch(info, false); }

Napi::Value HelloPeeker::WatchUnlessParsed(const Napi::CallbackInfo& info) { return StartWatch(info, true); }

Napi::Value HelloPeeker::StartWatch(const Napi::CallbackInfo& info, bool parsed_returns) {
  Napi::Env env = info.Env();
  const int fd = static_cast<int>(RequireInteger(env, info[0], "fd", 0, INT_MAX));
  const auto token = static_cast<uint32_t>(RequireInteger(env, info[1], "token", 0, kMaxToken));
  const int proxy_versions = info.Length() > 2 && !info[2].IsUndefined()
                                 ? static_cast<int>(RequireInteger(env, info[2], "proxyVersions", 0, kProxyAcceptV1 | kProxyAcceptV2))
                                 : 0;
  if (set_ == nullptr || set_->closed || set_->orphaned) throw Napi::Error::New(env, "the HelloPeeker is closed");
  if (set_->waiting.count(token) != 0) throw InvalidArgument(env, false, "token " + std::to_string(token) + " is waiting already");
  auto watch = std::make_unique<ntl::Watch>();
  watch->set = set_;
  watch->fd = fd;
  watch->token = token;
  watch->proxy_versions = proxy_versions;
  Outcome outcome;
  // Often the hello is there already (TCP_DEFER_ACCEPT, or a client quicker than the accept).
  if (Peek(watch.get(), false, set_->alpn_lists, outcome) == PeekResult::kWait) {
    ntl::Watch* waiting = watch.release();
    // The set takes the watch, and frees it if it cannot poll the descriptor.
    const int err = set_->waits.Add(waiting);
    if (err == 0) {
      set_->waiting.emplace(token, waiting);
      return env.Undefined();
    }
    // Not watched: the caller keeps the descriptor, with the low-water mark it had.
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    throw UvError(env, err, kLinuxCalls ? "epoll_ctl" : "uv_poll");
  }
  // Settled at once: the descriptor goes straight back to JS, before watch() returns.
  RestoreLowWater(watch.get());
  std::vector<napi_value> argv;
  const bool header = proxy_versions != 0;
  if (parsed_returns && !header && outcome.parsed && outcome.err == 0 && watch->taken.empty()) {
    // The hello came with the accept (always with TCP_DEFER_ACCEPT): no callback and no wait,
    // JS opens its TLSSocket straight away. The descriptor never left the caller.
    return ParsedHelloArray(env, outcome);
  }
  if (!OutcomeArguments(env, token, header, outcome, watch->taken, argv)) throw Napi::Error::New(env, "could not build the peek's outcome");
  (header ? set_->on_header : set_->on_hello).Value().Call(env.Global(), argv.size(), argv.data());
  return env.Undefined();
}

Napi::Value HelloPeeker::Cancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto token = static_cast<uint32_t>(RequireInteger(env, info[0], "token", 0, kMaxToken));
  if (set_ == nullptr) return Napi::Boolean::New(env, false);
  auto found = set_->waiting.find(token);
  if (found == set_->waiting.end()) return Napi::Boolean::New(env, false);
  ntl::Watch* watch = found->second;
  const int fd = watch->fd;
  EndWatch(watch);
  close(fd);
  return Napi::Boolean::New(env, true);
}

Napi::Value HelloPeeker::Close(const Napi::CallbackInfo& info) {
  if (set_ != nullptr && !set_->closed) CloseAll(set_);
  return info.Env().Undefined();
}

Napi::Function DefineHelloPeeker(Napi::Env env) {
  return HelloPeeker::DefineClass(env, "HelloPeeker",
                                  {
                                      HelloPeeker::InstanceMethod<&HelloPeeker::Watch>("watch"),
                                      HelloPeeker::InstanceMethod<&HelloPeeker::WatchUnlessParsed>("watchUnlessParsed"),
                                      HelloPeeker::InstanceMethod<&HelloPeeker::Cancel>("cancel"),
                                      HelloPeeker::InstanceMethod<&HelloPeeker::Close>("close"),
                                  });
}

}  // namespace ntl
