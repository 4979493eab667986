#include "notify_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "arguments.h"
#include "platform.h"

namespace ntl {
namespace {

struct SendResult {
  int err = 0;
  const char* syscall = nullptr;
};

SendResult Failed(const char* syscall) { return SendResult{errno, syscall}; }

SendResult SendDatagram(const sockaddr_un& address, socklen_t length, const std::string& state) {
  int fd = OpenSocket(AF_UNIX, SOCK_DGRAM, false);
  if (fd < 0) return Failed("socket");
  ssize_t sent;
  do {
    sent = sendto(fd, state.data(), state.size(), kNoSignal, reinterpret_cast<const sockaddr*>(&address), length);
  } while (sent < 0 && errno == EINTR);
  SendResult result;
  if (sent < 0) {
    result = Failed("sendto");
  } else if (static_cast<size_t>(sent) != state.size()) {
    // A datagram goes whole or not at all; anything else is the kernel cutting it short.
    result = SendResult{EMSGSIZE, "sendto"};
  }
  // EINTR from close still closes the descriptor on Linux; retrying could close another one.
  if (close(fd) != 0 && errno != EINTR && result.err == 0) result = Failed("close");
  return result;
}

}  // namespace

Napi::Value NotifySocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    throw InvalidArgument(env, true, "notifySocket(address: string, state: string)");
  }
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  const std::string state = info[1].As<Napi::String>().Utf8Value();

  sockaddr_un address;
  std::memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  // A path needs its terminating NUL inside sun_path; an abstract name ('@' becomes the
  // leading NUL) is exactly its bytes long.
  const bool abstract = !name.empty() && name[0] == '@';
  if (name.empty() || (name[0] != '/' && !abstract)) {
    throw InvalidArgument(env, false, "NOTIFY_SOCKET must be an absolute path or an @abstract name, got '" + name + "'");
  }
  if (name.size() + (abstract ? 0 : 1) > sizeof address.sun_path) {
    throw InvalidArgument(env, false, "NOTIFY_SOCKET is longer than a socket address can be: '" + name + "'");
  }
  std::memcpy(address.sun_path, name.data(), name.size());
  if (abstract) address.sun_path[0] = '\0';
  const socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (abstract ? 0 : 1));

  SendResult result = SendDatagram(address, length, state);
  Napi::Object outcome = Napi::Object::New(env);
  if (result.err != 0) {
    outcome.Set("errno", result.err);
    outcome.Set("syscall", result.syscall);
  }
  return outcome;
}

}  // namespace ntl
