// The shapes both accept loops (the single-thread acceptor and the workers' dispatcher) give
// JS, built in one place so that address() and stats() read alike for either.
#pragma once

#include <napi.h>

#include <cstdint>
#include <map>

namespace ntl {

// { address, family: 'IPv4' | 'IPv6', port } of the listening socket `fd`, as net.Server's
// address(); null when getsockname() fails.
Napi::Value LocalAddressValue(Napi::Env env, int fd);

// A libuv call (or a system call, with status -errno) failed: the Error JS sees, shaped like
// Node's own system errors (code, a positive errno, and the call as syscall). libuv's codes are
// -errno on Unix.
Napi::Error UvError(Napi::Env env, int status, const char* call);

// { "<errno>": count, ... }: the accept errors retried, by errno.
Napi::Object ErrnoCounts(Napi::Env env, const std::map<int, uint64_t>& counts);

}  // namespace ntl
