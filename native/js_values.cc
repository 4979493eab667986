#include "js_values.h"

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

Napi::Object ErrnoCounts(Napi::Env env, const std::map<int, uint64_t>& counts) {
  Napi::Object object = Napi::Object::New(env);
  for (const auto& entry : counts) {
    object.Set(Napi::Number::New(env, entry.first).ToString(), Napi::Number::New(env, static_cast<double>(entry.second)));
  }
  return object;
}

}  // namespace ntl
