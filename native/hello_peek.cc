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
#include "hello_take.h"
#include "js_callback.h"
#include "js_values.h"

namespace ntl {
namespace {

constexpr size_t kMaxAlpnLists = 4;
constexpr int64_t kMaxToken = INT32_MAX;

struct PeekSet;

// One connection waiting for its ClientHello. Freed in OnWatchClosed, once libuv is done with it.
struct Watch {
  uv_poll_t poll;
  PeekSet* set = nullptr;
  int fd = -1;
  uint32_t token = 0;
  // Stream bytes the last peek saw, and the SO_RCVLOWAT set on the socket (1 is the default).
  size_t peeked = 0;
  int lowat = 1;
  // Set once the queue would not hold the whole hello (native/hello_take.h): the stream's first
  // bytes, read off the socket, which JS puts back in front of it. Empty otherwise.
  bool taking = false;
  std::vector<uint8_t> taken;
};

struct Outcome {
  bool parsed = false;
  // The socket's error the peek met (it is consumed by reading it, so JS is told), or 0.
  int err = 0;
  std::string servername;
  bool has_servername = false;
  std::vector<int32_t> choices;
};

// One per HelloPeeker. Outlives it while libuv still holds a watch's handle. An EnvResource of
// its environment (native/addon.h) until freed.
struct PeekSet final : public EnvResource {
  // Closes every wait (their descriptors with them), with no JS call.
  void CloseAtTeardown() override;

  napi_env env = nullptr;
  uv_loop_t* loop = nullptr;
  Napi::FunctionReference on_hello;
  std::unique_ptr<Napi::AsyncContext> async_context;
  std::vector<std::vector<std::string>> alpn_lists;
  std::unordered_map<uint32_t, Watch*> waiting;
  size_t handles_open = 0;
  bool closed = false;     // no more watches; waiting ones were closed
  bool orphaned = false;   // its HelloPeeker is gone (collected) or the environment is
  // The HelloPeeker's pointer to this set, cleared when the set is freed first (the teardown
  // hook can run before the wrapper's finalizer).
  PeekSet** owner_slot = nullptr;
};

// The peek buffer: one per thread (each worker thread has its own loop), filled and parsed
// within one call, so no connection keeps bytes here between wakes.
struct PeekBuffers {
  std::vector<uint8_t> stream = std::vector<uint8_t>(kMaxHelloStreamBytes);
  std::vector<uint8_t> scratch;
};

PeekBuffers& ThreadBuffers() {
  thread_local PeekBuffers buffers;
  return buffers;
}

void MaybeFree(PeekSet* set) {
  if (!set->orphaned || set->handles_open > 0) return;
  if (set->owner_slot != nullptr) *set->owner_slot = nullptr;
  delete set;
}

void OnWatchClosed(uv_handle_t* handle) {
  auto* watch = static_cast<Watch*>(handle->data);
  PeekSet* set = watch->set;
  delete watch;
  set->handles_open--;
  MaybeFree(set);
}

// Stops polling and frees the watch later; the descriptor is left as it is (closed or handed
// over by the caller). uv_close removes the fd from epoll before returning, so another handle
// may open it at once.
void EndWatch(Watch* watch) {
  watch->set->waiting.erase(watch->token);
  uv_close(reinterpret_cast<uv_handle_t*>(&watch->poll), OnWatchClosed);
}

void CloseAll(PeekSet* set) {
  set->closed = true;
  auto waiting = std::move(set->waiting);
  set->waiting.clear();
  for (auto& entry : waiting) {
    Watch* watch = entry.second;
    uv_close(reinterpret_cast<uv_handle_t*>(&watch->poll), OnWatchClosed);
    close(watch->fd);
  }
}

// Nobody can take a descriptor any more (the HelloPeeker was collected, or its environment is
// going away): every wait is closed, and the set is freed once libuv is done with it.
void Orphan(PeekSet* set) {
  CloseAll(set);
  set->on_hello.Reset();
  set->async_context.reset();
  set->orphaned = true;
  MaybeFree(set);
}

// What the server offers, per list, for the client's ALPN list.
void ChooseProtocols(const PeekSet& set, const HelloView& view, Outcome& outcome) {
  outcome.choices.assign(set.alpn_lists.size(), -1);
  if (view.alpn == nullptr) return;
  for (size_t list = 0; list < set.alpn_lists.size(); list++) {
    const auto& offered = set.alpn_lists[list];
    ForEachAlpnProtocol(view.alpn, view.alpn_length, [&](const uint8_t* name, size_t length) {
      for (size_t i = 0; i < offered.size(); i++) {
        if (offered[i].size() == length && offered[i].compare(0, length, reinterpret_cast<const char*>(name), length) == 0) {
          outcome.choices[list] = static_cast<int32_t>(i);
          return true;
        }
      }
      return false;
    });
  }
}

enum class PeekResult { kWait, kDone };

// kDone with `outcome` filled for a hello parsed whole or left to OpenSSL, else kWait with
// SO_RCVLOWAT at the bytes the parse needs next.
PeekResult AfterParse(Watch* watch, const HelloView& view, Outcome& outcome) {
  if (view.status == HelloStatus::kComplete) {
    outcome.parsed = true;
    if (view.host_name != nullptr) {
      outcome.has_servername = true;
      outcome.servername.assign(reinterpret_cast<const char*>(view.host_name), view.host_name_length);
    }
    ChooseProtocols(*watch->set, view, outcome);
    return PeekResult::kDone;
  }
  if (view.status == HelloStatus::kUnparsed) return PeekResult::kDone;
  // need <= kMaxHelloStreamBytes, well within an int; the kernel may cap it (half the receive
  // buffer's limit), and a queue stuck below it wakes with nothing new (Peek). The mark counts
  // the bytes queued: the whole need while peeking, what is still missing once taking.
  const int lowat = static_cast<int>(view.need - watch->taken.size());
  if (lowat != watch->lowat) {
    if (setsockopt(watch->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) != 0) return PeekResult::kDone;
    watch->lowat = lowat;
  }
  return PeekResult::kWait;
}

// Reads what is queued onto watch->taken and parses all that was taken. Consuming lets the
// kernel queue the rest of a hello larger than the queue. A FIN hands OpenSSL the bytes taken,
// then the end, as it would have read them.
PeekResult Take(Watch* watch, Outcome& outcome) {
  watch->taking = true;
  const ssize_t got = TakeQueued(watch->fd, watch->taken);
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return PeekResult::kWait;
  if (got < 0) {
    outcome.err = errno;
    return PeekResult::kDone;
  }
  if (got == 0) return PeekResult::kDone;
  return AfterParse(watch, ParseClientHello(watch->taken.data(), watch->taken.size(), ThreadBuffers().scratch), outcome);
}

// Peeks at what the socket holds and parses it: kDone with `outcome` filled, or kWait with
// SO_RCVLOWAT raised to the bytes needed next. `woken`: called for a poll event, so a peek
// that brings nothing new means the queue will not grow (FIN, reset, full buffer).
PeekResult Peek(Watch* watch, bool woken, Outcome& outcome) {
  if (watch->taking) return Take(watch, outcome);
  PeekBuffers& buffers = ThreadBuffers();
  ssize_t got;
  do {
    got = recv(watch->fd, buffers.stream.data(), buffers.stream.size(), MSG_PEEK | MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    if (!woken || watch->peeked == 0) return PeekResult::kWait;
    return PeekResult::kDone;  // readable yet nothing to read: let the socket's reader see why
  }
  if (got < 0) {
    outcome.err = errno;
    return PeekResult::kDone;
  }
  // The client's FIN with nothing sent: OpenSSL's reader meets it just the same.
  if (got == 0) return PeekResult::kDone;
  const size_t length = static_cast<size_t>(got);
  HelloView view = ParseClientHello(buffers.stream.data(), length, buffers.scratch);
  if (view.status == HelloStatus::kNeedMore && woken && length <= watch->peeked) {
    // Nothing new: a reset behind bytes still queued, a FIN, or a full queue. libuv would
    // report a reset there as an end (it stops at a hang-up after a short read), so the error
    // is taken here and JS fails the connection with it. A full queue (the level-triggered
    // poll keeps waking on it) is read off the socket, so the rest of the hello can come.
    int err = 0;
    socklen_t size = sizeof err;
    if (getsockopt(watch->fd, SOL_SOCKET, SO_ERROR, &err, &size) == 0) outcome.err = err;
    if (outcome.err != 0 || PeerFinishedSending(watch->fd)) return PeekResult::kDone;
    return Take(watch, outcome);
  }
  watch->peeked = length;
  return AfterParse(watch, view, outcome);
}

// Puts SO_RCVLOWAT back for the socket's reader. Failing, the descriptor still goes to JS: its
// reader then sees data only in bigger amounts, and the handshake timeout bounds that.
void RestoreLowWater(Watch* watch) {
  if (watch->lowat == 1) return;
  const int one = 1;
  (void)setsockopt(watch->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
  watch->lowat = 1;
}

// onHello's arguments. Plain N-API calls with each status checked: in a terminating worker they
// fail, and node-addon-api would throw from a libuv callback.
bool OutcomeArguments(napi_env env, uint32_t token, const Outcome& outcome, const std::vector<uint8_t>& taken,
                      std::vector<napi_value>& argv) {
  argv.assign(5 + outcome.choices.size(), nullptr);
  if (napi_create_uint32(env, token, &argv[0]) != napi_ok) return false;
  if (napi_create_int32(env, outcome.err, &argv[3]) != napi_ok) return false;
  if (napi_get_boolean(env, outcome.parsed, &argv[1]) != napi_ok) return false;
  napi_status status = outcome.has_servername
                           ? napi_create_string_latin1(env, outcome.servername.data(), outcome.servername.size(), &argv[2])
                           : napi_get_undefined(env, &argv[2]);
  if (status != napi_ok) return false;
  status = taken.empty() ? napi_get_undefined(env, &argv[4]) : napi_create_buffer_copy(env, taken.size(), taken.data(), nullptr, &argv[4]);
  if (status != napi_ok) return false;
  for (size_t i = 0; i < outcome.choices.size(); i++) {
    if (napi_create_int32(env, outcome.choices[i], &argv[5 + i]) != napi_ok) return false;
  }
  return true;
}

// Hands the descriptor to JS. When JS cannot run (the environment is going away) nobody will
// take it, so it is closed here.
void Deliver(PeekSet* set, Watch* watch, const Outcome& outcome) {
  RestoreLowWater(watch);
  const int fd = watch->fd;
  const uint32_t token = watch->token;
  const std::vector<uint8_t> taken = std::move(watch->taken);
  EndWatch(watch);
  napi_env env = set->env;
  napi_handle_scope scope = nullptr;
  if (set->on_hello.IsEmpty() || napi_open_handle_scope(env, &scope) != napi_ok) {
    close(fd);
    return;
  }
  std::vector<napi_value> argv;
  // Once called, the descriptor is JS's whatever the callback did (it catches its own errors).
  bool called = false;
  if (OutcomeArguments(env, token, outcome, taken, argv)) {
    (void)CallJsCallback(env, *set->async_context, set->on_hello, argv.size(), argv.data(), &called);
  }
  if (!called) close(fd);
  (void)napi_close_handle_scope(env, scope);
}

void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  auto* watch = static_cast<Watch*>(handle->data);
  Outcome outcome;
  // libuv reports a socket error (EPOLLERR) as UV_EBADF and stops the poll: the peek then
  // reads the real error (a reset), and whatever it finds, the wait is over.
  if (Peek(watch, true, outcome) == PeekResult::kWait && status == 0) return;
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
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  PeekSet* set_ = nullptr;
};

HelloPeeker::HelloPeeker(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HelloPeeker>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsFunction()) {
    throw InvalidArgument(env, true, "new HelloPeeker(alpnLists: Buffer[], onHello: function)");
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
  set->on_hello = Napi::Persistent(info[1].As<Napi::Function>());
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

Napi::Value HelloPeeker::Watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = static_cast<int>(RequireInteger(env, info[0], "fd", 0, INT_MAX));
  const auto token = static_cast<uint32_t>(RequireInteger(env, info[1], "token", 0, kMaxToken));
  if (set_ == nullptr || set_->closed || set_->orphaned) throw Napi::Error::New(env, "the HelloPeeker is closed");
  if (set_->waiting.count(token) != 0) throw InvalidArgument(env, false, "token " + std::to_string(token) + " is waiting already");
  auto watch = std::make_unique<ntl::Watch>();
  watch->set = set_;
  watch->fd = fd;
  watch->token = token;
  Outcome outcome;
  // Often the hello is there already (TCP_DEFER_ACCEPT, or a client quicker than the accept).
  if (Peek(watch.get(), false, outcome) == PeekResult::kWait) {
    // UV_EEXIST: this loop watches the fd already; nothing was done to it.
    int err = uv_poll_init(set_->loop, &watch->poll, fd);
    if (err == 0) {
      watch->poll.data = watch.get();
      set_->handles_open++;
      err = uv_poll_start(&watch->poll, UV_READABLE, OnReadable);
      if (err == 0) {
        set_->waiting.emplace(token, watch.get());
        watch.release();
        return env.Undefined();
      }
      uv_close(reinterpret_cast<uv_handle_t*>(&watch->poll), OnWatchClosed);
      watch.release();  // freed by OnWatchClosed
    }
    // Not watched: the caller keeps the descriptor, with the low-water mark it had.
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    throw UvError(env, err, "uv_poll");
  }
  // Settled at once: the descriptor goes straight back to JS, before watch() returns.
  RestoreLowWater(watch.get());
  std::vector<napi_value> argv;
  if (!OutcomeArguments(env, token, outcome, watch->taken, argv)) throw Napi::Error::New(env, "could not build the ClientHello outcome");
  set_->on_hello.Value().Call(env.Global(), argv.size(), argv.data());
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
                                      HelloPeeker::InstanceMethod<&HelloPeeker::Cancel>("cancel"),
                                      HelloPeeker::InstanceMethod<&HelloPeeker::Close>("close"),
                                  });
}

}  // namespace ntl
