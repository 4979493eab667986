// The JS arguments of a finished peek (native/peek_wait.h's Outcome): what HelloPeeker's
// onHello or onHeader callback is called with (their shapes are in native/hello_peek.h).
#pragma once

#include <napi.h>
#include <node_api.h>

#include <cstdint>
#include <vector>

#include "peek_wait.h"

namespace ntl {

// Fills argv for onHello, or for onHeader when `header`; `taken` is the stream's first bytes
// read off the socket (empty: none). False when an N-API call failed (a terminating worker):
// then nobody can be called, and the caller closes the descriptor.
bool OutcomeArguments(napi_env env, uint32_t token, bool header, const Outcome& outcome, const std::vector<uint8_t>& taken,
                      std::vector<napi_value>& argv);

// A hello parsed at once, as watchUnlessParsed() returns it: [servername | undefined, ...choices].
// Throws (node-addon-api) when an N-API call fails.
Napi::Array ParsedHelloArray(Napi::Env env, const Outcome& outcome);

}  // namespace ntl
