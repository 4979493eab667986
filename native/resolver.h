// Passive address resolution (getaddrinfo with AI_PASSIVE) off the JS thread.
#pragma once

#include <napi.h>

namespace ntl {

// resolvePassive(host: string | null, service: string): Promise<{ family: 4 | 6, address, port }[]>
// Rejects with { code: 'EAI_*' name left to JS, gaiError: number, message }.
Napi::Value ResolvePassive(const Napi::CallbackInfo& info);

}  // namespace ntl
