// Registers the addon's exports and nothing else; each concern lives in its own file.
#include <napi.h>

#include <unistd.h>

#include <cerrno>
#include <climits>

#include "acceptor.h"
#include "addon.h"
#include "address_key.h"
#include "arguments.h"
#include "descriptor_passing.h"
#include "dispatcher.h"
#include "hello_peek.h"
#include "listen_socket.h"
#include "notify_socket.h"
#include "resolver.h"
#include "worker_queue.h"

namespace ntl {
namespace {

// C++ reports numbers (errno, the failing call); JS builds the Error objects.
Napi::Object ListenOutcome(Napi::Env env, const ListenResult& result) {
  Napi::Object outcome = Napi::Object::New(env);
  if (result.fd >= 0) {
    outcome.Set("fd", result.fd);
  } else {
    outcome.Set("errno", result.err);
    outcome.Set("syscall", result.syscall != nullptr ? result.syscall : "listen");
    if (result.family != 0) outcome.Set("family", result.family);
  }
  return outcome;
}

// openListenSocket(family: 4 | 6, numericAddress: string, port: 0..65535, backlog: 0..2^31-1)
Napi::Value OpenListenSocketJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[1].IsString()) {
    throw InvalidArgument(env, true, "openListenSocket(family, numericAddress, port, backlog)");
  }
  int family = 0;
  if (info[0].IsNumber()) {
    double number = info[0].As<Napi::Number>().DoubleValue();
    family = number == 4 ? 4 : number == 6 ? 6 : 0;
  }
  if (family == 0) {
    throw InvalidArgument(env, !info[0].IsNumber(), "family must be 4 or 6, got " + DescribeValue(info[0]));
  }
  // The kernel caps the backlog at net.core.somaxconn; the range only keeps it an int.
  int64_t port = RequireInteger(env, info[2], "port", 0, 65535);
  int64_t backlog = RequireInteger(env, info[3], "backlog", 0, INT_MAX);
  return ListenOutcome(env, OpenListenSocket(family, info[1].As<Napi::String>().Utf8Value(),
                                             static_cast<int>(port), static_cast<int>(backlog)));
}

// prepareAdoptedSocket(fd: 0..2^31-1)
Napi::Value PrepareAdoptedSocketJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd = RequireInteger(env, info[0], "fd", 0, INT_MAX);
  return ListenOutcome(env, PrepareAdoptedSocket(static_cast<int>(fd)));
}

// setDeferAccept(fd: 0..2^31-1, seconds: 0..2^31-1): 0, or the errno of setsockopt
// (ENOPROTOOPT where the system has no TCP_DEFER_ACCEPT).
Napi::Value SetDeferAcceptJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd = RequireInteger(env, info[0], "fd", 0, INT_MAX);
  int64_t seconds = RequireInteger(env, info[1], "seconds", 0, INT_MAX);
  return Napi::Number::New(env, SetDeferAccept(static_cast<int>(fd), static_cast<int>(seconds)));
}

// closeDescriptor(fd: 0..2^31-1): 0, or the errno of close(). A descriptor the native side
// handed to JS and that no socket took: closed here, not with fs.closeSync, which in a worker
// thread warns of a descriptor the worker did not open ("closed but not opened in unmanaged mode").
Napi::Value CloseDescriptorJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd = RequireInteger(env, info[0], "fd", 0, INT_MAX);
  return Napi::Number::New(env, close(static_cast<int>(fd)) == 0 ? 0 : errno);
}

// addressKey(text, ipv6Prefix): the key maxConnectionsPerAddress counts `text` under
// (native/address_key.h), as text, or null when it is not limited. What the shared cases in
// test/fixtures/address_keys.json check the C++ rule with.
Napi::Value AddressKeyJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString()) throw InvalidArgument(env, true, "addressKey(text, ipv6Prefix)");
  int prefix = static_cast<int>(RequireInteger(env, info[1], "ipv6Prefix", 1, 128));
  AddressKey key;
  if (!AddressKeyOfText(info[0].As<Napi::String>().Utf8Value(), prefix, &key)) return env.Null();
  return Napi::String::New(env, AddressKeyText(key));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // The environment's state, and its one cleanup hook, before any handle can be made.
  Addon::Install(env);
  exports.Set("Acceptor", Acceptor::Define(env));
  exports.Set("Dispatcher", Dispatcher::Define(env));
  exports.Set("WorkerQueue", WorkerQueue::Define(env));
  exports.Set("HelloPeeker", DefineHelloPeeker(env));
  exports.Set("openListenSocket", Napi::Function::New<OpenListenSocketJs>(env, "openListenSocket"));
  exports.Set("prepareAdoptedSocket", Napi::Function::New<PrepareAdoptedSocketJs>(env, "prepareAdoptedSocket"));
  exports.Set("addressKey", Napi::Function::New<AddressKeyJs>(env, "addressKey"));
  exports.Set("setDeferAccept", Napi::Function::New<SetDeferAcceptJs>(env, "setDeferAccept"));
  exports.Set("closeDescriptor", Napi::Function::New<CloseDescriptorJs>(env, "closeDescriptor"));
  exports.Set("resolvePassive", Napi::Function::New<ResolvePassive>(env, "resolvePassive"));
  exports.Set("notifySocket", Napi::Function::New<NotifySocket>(env, "notifySocket"));
  exports.Set("sendDescriptors", Napi::Function::New<SendDescriptors>(env, "sendDescriptors"));
  exports.Set("receiveDescriptors", Napi::Function::New<ReceiveDescriptors>(env, "receiveDescriptors"));
  return exports;
}

}  // namespace
}  // namespace ntl

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return ntl::Init(env, exports); }

NODE_API_MODULE(native_acceptor, InitModule)
