#include "js_values.h"

#include <uv.h>

#include <string>

#include "listen_socket.h"

namespace ntl {

Napi::Value LocalAddressValue(Napi::Env env, int fd) {
  LocalAddress local = GetLocalAddress(fd);
  if (local.err != 0) return env.Null();
  Napi::Object address = Napi::Object::New(env);
  address.Set("address", local.address);
  address.Set("family", local.family == 6 ? "IPv6" : "IPv4");
  address.Set("port", local.port);
  return address;
}

Napi::Error UvError(Napi::Env env, int status, const char* call) {
  std::string code = uv_err_name(status);
  Napi::Error error = Napi::Error::New(env, std::string(call) + " " + code + ": " + uv_strerror(status));
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -status));
  error.Set("syscall", Napi::String::New(env, call));
  return error;
}

Napi::Object ErrnoCounts(Napi::Env env, const std::map<int, uint64_t>& counts) {
  Napi::Object object = Napi::Object::New(env);
  for (const auto& entry : counts) {
    object.Set(Napi::Number::New(env, entry.first).ToString(), Napi::Number::New(env, static_cast<double>(entry.second)));
  }
  return object;
}

}  // namespace ntl
