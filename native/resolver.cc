#include "resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <vector>

namespace ntl {
namespace {

struct ResolvedAddress {
  int family;
  std::string address;
  int port;
};

// getaddrinfo may read /etc/hosts, /etc/services or ask DNS: never on the event loop.
class ResolveWorker : public Napi::AsyncWorker {
 public:
  ResolveWorker(Napi::Env env, bool has_host, std::string host, std::string service)
      : Napi::AsyncWorker(env, "native-tls-listener:resolve"),
        deferred_(Napi::Promise::Deferred::New(env)),
        has_host_(has_host),
        host_(std::move(host)),
        service_(std::move(service)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    addrinfo hints;
    std::memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* results = nullptr;
    gai_error_ = getaddrinfo(has_host_ ? host_.c_str() : nullptr, service_.c_str(), &hints, &results);
    if (gai_error_ != 0) return;
    for (addrinfo* entry = results; entry != nullptr; entry = entry->ai_next) {
      char text[INET6_ADDRSTRLEN] = {0};
      if (entry->ai_family == AF_INET6) {
        auto* addr = reinterpret_cast<sockaddr_in6*>(entry->ai_addr);
        inet_ntop(AF_INET6, &addr->sin6_addr, text, sizeof text);
        addresses_.push_back({6, text, ntohs(addr->sin6_port)});
      } else if (entry->ai_family == AF_INET) {
        auto* addr = reinterpret_cast<sockaddr_in*>(entry->ai_addr);
        inet_ntop(AF_INET, &addr->sin_addr, text, sizeof text);
        addresses_.push_back({4, text, ntohs(addr->sin_port)});
      }
    }
    freeaddrinfo(results);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (gai_error_ != 0) {
      Napi::Object failure = Napi::Object::New(env);
      failure.Set("gaiError", gai_error_);
      failure.Set("message", gai_strerror(gai_error_));
      deferred_.Reject(failure);
      return;
    }
    Napi::Array list = Napi::Array::New(env, addresses_.size());
    for (size_t i = 0; i < addresses_.size(); i++) {
      Napi::Object item = Napi::Object::New(env);
      item.Set("family", addresses_[i].family);
      item.Set("address", addresses_[i].address);
      item.Set("port", addresses_[i].port);
      list.Set(static_cast<uint32_t>(i), item);
    }
    deferred_.Resolve(list);
  }

 private:
  Napi::Promise::Deferred deferred_;
  bool has_host_;
  std::string host_;
  std::string service_;
  int gai_error_ = 0;
  std::vector<ResolvedAddress> addresses_;
};

}  // namespace

Napi::Value ResolvePassive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsString() || !(info[0].IsString() || info[0].IsNull())) {
    throw Napi::TypeError::New(env, "resolvePassive(host: string | null, service: string)");
  }
  bool has_host = info[0].IsString();
  std::string host = has_host ? info[0].As<Napi::String>().Utf8Value() : std::string();
  auto* worker = new ResolveWorker(env, has_host, host, info[1].As<Napi::String>().Utf8Value());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace ntl
