#include "descriptor_passing.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "arguments.h"
#include "platform.h"

namespace ntl {
namespace {

// The bounds of one hand-off message: a few listening sockets and a short JSON line.
constexpr size_t kMaxDescriptors = 16;
constexpr size_t kMaxPayloadBytes = 1024;
// The longest receive allowed (src/upgrade/protocol.ts MAX_HANDOFF_TIMEOUT_MS): the wait holds
// one of the threadpool's threads (four by default) for its whole length.
constexpr int64_t kMaxReceiveTimeoutMs = 60000;

int64_t NowMs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

// Waits for `events` on `fd` until `deadline_ms`; false with errno set (ETIMEDOUT on time-out).
bool WaitFor(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    int64_t left = deadline_ms - NowMs();
    if (left <= 0) {
      errno = ETIMEDOUT;
      return false;
    }
    pollfd entry = {fd, events, 0};
    int ready = poll(&entry, 1, left > INT_MAX ? INT_MAX : static_cast<int>(left));
    if (ready == -1 && errno == EINTR) continue;
    if (ready == -1) return false;
    if (ready == 0) continue;  // the loop re-checks the deadline
    return true;
  }
}

// 0 when `fd` is a listening TCP socket (AF_INET/AF_INET6, SOCK_STREAM); else an errno.
int CheckListeningTcp(int fd) {
  int value = 0;
  socklen_t length = sizeof value;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &length) == -1) return errno;
  if (value != SOCK_STREAM) return EPROTOTYPE;
  length = sizeof value;
#ifdef SO_DOMAIN
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &value, &length) == -1) return errno;
  if (value != AF_INET && value != AF_INET6) return EAFNOSUPPORT;
  length = sizeof value;
#endif
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &length) == -1) return errno;
  if (value != 1) return EINVAL;
  return 0;
}

class ReceiveWorker : public Napi::AsyncWorker {
 public:
  ReceiveWorker(Napi::Env env, std::string path, int64_t timeout_ms)
      : Napi::AsyncWorker(env, "native-tls-listener:receiveDescriptors"),
        deferred_(Napi::Promise::Deferred::New(env)),
        path_(std::move(path)),
        timeout_ms_(timeout_ms) {}

  ~ReceiveWorker() override { CloseAll(); }

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  // Connect, then one recvmsg, both bounded by the deadline. Blocking work: off the loop.
  void Execute() override {
    int64_t deadline = NowMs() + timeout_ms_;
    sockaddr_un address;
    std::memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    if (path_.size() >= sizeof address.sun_path) return Fail(ENAMETOOLONG, "connect");
    std::memcpy(address.sun_path, path_.c_str(), path_.size());

    socket_fd_ = OpenSocket(AF_UNIX, SOCK_STREAM, true);
    if (socket_fd_ == -1) return Fail(errno, "socket");
    if (connect(socket_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == -1) {
      // A Unix socket whose backlog is full answers EAGAIN; wait for it like EINPROGRESS.
      if (errno != EINPROGRESS && errno != EAGAIN) return Fail(errno, "connect");
      if (!WaitFor(socket_fd_, POLLOUT, deadline)) return Fail(errno, "connect");
      int pending = 0;
      socklen_t length = sizeof pending;
      if (getsockopt(socket_fd_, SOL_SOCKET, SO_ERROR, &pending, &length) == -1) return Fail(errno, "getsockopt");
      if (pending != 0) return Fail(pending, "connect");
    }

    if (!WaitFor(socket_fd_, POLLIN, deadline)) return Fail(errno, "recvmsg");
    char data[kMaxPayloadBytes];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxDescriptors)];
    iovec vector = {data, sizeof data};
    msghdr message;
    std::memset(&message, 0, sizeof message);
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    ssize_t received;
    do {
      received = ReceiveMessage(socket_fd_, &message);
    } while (received == -1 && errno == EINTR);
    if (received == -1) return Fail(errno, "recvmsg");
    // Take every descriptor the kernel installed before judging the message, so that each
    // one is closed on a failure below, never leaked.
    bool foreign_control = false;
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
      if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) {
        foreign_control = true;
        continue;
      }
      size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const unsigned char* cursor = CMSG_DATA(header);
      for (size_t i = 0; i < count; i++) {
        int fd;
        std::memcpy(&fd, cursor + i * sizeof(int), sizeof fd);
        fds_.push_back(fd);
      }
    }
    if (received == 0) return Fail(ECONNRESET, "recvmsg");  // the sender went away first
    if ((message.msg_flags & MSG_CTRUNC) != 0) return Fail(EMSGSIZE, "recvmsg");
    if (foreign_control || fds_.empty()) return Fail(EBADMSG, "recvmsg");
    for (int fd : fds_) {
      int refused = CheckListeningTcp(fd);
      if (refused != 0) return Fail(refused, "getsockopt");
    }
    payload_.assign(data, data + received);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object result = Napi::Object::New(env);
    Napi::Array fds = Napi::Array::New(env, fds_.size());
    for (size_t i = 0; i < fds_.size(); i++) fds.Set(static_cast<uint32_t>(i), fds_[i]);
    result.Set("socketFd", socket_fd_);
    result.Set("fds", fds);
    result.Set("payload", Napi::Buffer<char>::Copy(env, payload_.data(), payload_.size()));
    // From here every descriptor is the caller's.
    socket_fd_ = -1;
    fds_.clear();
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error&) override {
    Napi::Env env = Env();
    Napi::Object failure = Napi::Object::New(env);
    failure.Set("errno", errno_);
    failure.Set("syscall", syscall_);
    deferred_.Reject(failure);
  }

 private:
  // Closes everything this worker holds and reports the failure (in OnError, on the loop).
  void Fail(int err, const char* syscall) {
    errno_ = err;
    syscall_ = syscall;
    CloseAll();
    SetError(syscall);
  }

  void CloseAll() {
    for (int fd : fds_) close(fd);
    fds_.clear();
    if (socket_fd_ != -1) close(socket_fd_);
    socket_fd_ = -1;
  }

  Napi::Promise::Deferred deferred_;
  std::string path_;
  int64_t timeout_ms_;
  int socket_fd_ = -1;
  std::vector<int> fds_;
  std::vector<char> payload_;
  int errno_ = 0;
  const char* syscall_ = "";
};

Napi::Object SystemFailure(Napi::Env env, int err, const char* syscall) {
  Napi::Object failure = Napi::Object::New(env);
  failure.Set("errno", err);
  failure.Set("syscall", syscall);
  return failure;
}

}  // namespace

Napi::Value SendDescriptors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t socket_fd = RequireInteger(env, info[0], "socketFd", 0, INT_MAX);
  if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsBuffer()) {
    throw InvalidArgument(env, true, "sendDescriptors(socketFd, fds: number[], payload: Buffer)");
  }
  Napi::Array list = info[1].As<Napi::Array>();
  if (list.Length() < 1 || list.Length() > kMaxDescriptors) {
    throw InvalidArgument(env, false, "fds must hold 1 to " + std::to_string(kMaxDescriptors) + " descriptors");
  }
  Napi::Buffer<char> payload = info[2].As<Napi::Buffer<char>>();
  if (payload.Length() < 1 || payload.Length() > kMaxPayloadBytes) {
    throw InvalidArgument(env, false, "payload must be 1 to " + std::to_string(kMaxPayloadBytes) + " bytes");
  }
  std::vector<int> fds;
  for (uint32_t i = 0; i < list.Length(); i++) {
    fds.push_back(static_cast<int>(RequireInteger(env, list.Get(i), "fd", 0, INT_MAX)));
  }

  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxDescriptors)];
  std::memset(control, 0, sizeof control);
  iovec vector = {payload.Data(), payload.Length()};
  msghdr message;
  std::memset(&message, 0, sizeof message);
  message.msg_iov = &vector;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());

  // Never blocks the loop: a full socket answers EAGAIN, which fails the hand-off.
  ssize_t sent;
  do {
    sent = sendmsg(static_cast<int>(socket_fd), &message, MSG_DONTWAIT | kNoSignal);
  } while (sent == -1 && errno == EINTR);
  if (sent == -1) return SystemFailure(env, errno, "sendmsg");
  // Any byte sent carried the descriptors (SCM_RIGHTS rides with the first): they are
  // delivered, so this succeeds even when only part of the payload went; the caller sends the
  // rest (`sent` says how much went) on the same stream, after them.
  Napi::Object result = Napi::Object::New(env);
  result.Set("sent", static_cast<double>(sent));
  return result;
}

Napi::Value ReceiveDescriptors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString()) throw InvalidArgument(env, true, "receiveDescriptors(path: string, timeoutMs)");
  int64_t timeout_ms = RequireInteger(env, info[1], "timeoutMs", 1, kMaxReceiveTimeoutMs);
  auto* worker = new ReceiveWorker(env, info[0].As<Napi::String>().Utf8Value(), timeout_ms);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace ntl
