// sd_notify(3)'s message to the service manager: one datagram to the AF_UNIX socket named by
// NOTIFY_SOCKET (a path, or '@name' in the abstract namespace), which Node cannot send itself.
#pragma once

#include <napi.h>

namespace ntl {

// notifySocket(address: string, state: string): {} when sent, else { errno, syscall }.
// Throws ERR_INVALID_OPTION for an address that is neither '/path' nor '@name', or too long.
Napi::Value NotifySocket(const Napi::CallbackInfo& info);

}  // namespace ntl
