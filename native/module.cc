// Registers the addon's exports and nothing else; each concern lives in its own file.
#include <napi.h>

#include "acceptor.h"
#include "listen_socket.h"
#include "resolver.h"

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
  }
  return outcome;
}

// openListenSocket(family: 4 | 6, numericAddress: string, port: number, backlog: number)
Napi::Value OpenListenSocketJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber() ||
      !info[3].IsNumber()) {
    throw Napi::TypeError::New(env, "openListenSocket(family, numericAddress, port, backlog)");
  }
  return ListenOutcome(env, OpenListenSocket(info[0].As<Napi::Number>().Int32Value(),
                                             info[1].As<Napi::String>().Utf8Value(),
                                             info[2].As<Napi::Number>().Int32Value(),
                                             info[3].As<Napi::Number>().Int32Value()));
}

// prepareAdoptedSocket(fd: number)
Napi::Value PrepareAdoptedSocketJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, "prepareAdoptedSocket(fd)");
  }
  return ListenOutcome(env, PrepareAdoptedSocket(info[0].As<Napi::Number>().Int32Value()));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Acceptor", Acceptor::Define(env));
  exports.Set("openListenSocket", Napi::Function::New<OpenListenSocketJs>(env, "openListenSocket"));
  exports.Set("prepareAdoptedSocket", Napi::Function::New<PrepareAdoptedSocketJs>(env, "prepareAdoptedSocket"));
  exports.Set("resolvePassive", Napi::Function::New<ResolvePassive>(env, "resolvePassive"));
  return exports;
}

}  // namespace
}  // namespace ntl

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return ntl::Init(env, exports); }

NODE_API_MODULE(native_acceptor, InitModule)
