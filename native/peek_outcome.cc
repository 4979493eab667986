#include "peek_outcome.h"

namespace ntl {
namespace {

// What a parsed hello asks for, as both callbacks take it: the server name at argv[name_at]
// (undefined without one), and the choice from each ALPN list from argv[choices_at] on.
bool HelloArguments(napi_env env, const Outcome& outcome, size_t name_at, size_t choices_at, std::vector<napi_value>& argv) {
  napi_status status = outcome.has_servername
                           ? napi_create_string_latin1(env, outcome.servername.data(), outcome.servername.size(), &argv[name_at])
                           : napi_get_undefined(env, &argv[name_at]);
  if (status != napi_ok) return false;
  for (size_t i = 0; i < outcome.choices.size(); i++) {
    if (napi_create_int32(env, outcome.choices[i], &argv[choices_at + i]) != napi_ok) return false;
  }
  return true;
}

}  // namespace

// onHello's arguments. Plain N-API calls with each status checked: in a terminating worker they
// fail, and node-addon-api would throw from a libuv callback.
// For a PROXY header wait, onHeader's: (token, header: Buffer | undefined, errno), then, when the
// hello that followed the header was parsed in the same peek, (1, servername, ...choices).
bool OutcomeArguments(napi_env env, uint32_t token, bool header, const Outcome& outcome, const std::vector<uint8_t>& taken,
                      std::vector<napi_value>& argv) {
  if (header) {
    argv.assign(outcome.parsed ? 5 + outcome.choices.size() : 3, nullptr);
    if (napi_create_uint32(env, token, &argv[0]) != napi_ok) return false;
    napi_status status = outcome.framed ? napi_create_buffer_copy(env, outcome.header.size(), outcome.header.data(), nullptr, &argv[1])
                                        : napi_get_undefined(env, &argv[1]);
    if (status != napi_ok || napi_create_int32(env, outcome.err, &argv[2]) != napi_ok) return false;
    if (!outcome.parsed) return true;
    // The hello that came with the header, parsed from the same peek.
    return napi_create_int32(env, 1, &argv[3]) == napi_ok && HelloArguments(env, outcome, 4, 5, argv);
  }
  argv.assign(5 + outcome.choices.size(), nullptr);
  if (napi_create_uint32(env, token, &argv[0]) != napi_ok) return false;
  if (napi_create_int32(env, outcome.err, &argv[3]) != napi_ok) return false;
  if (napi_create_int32(env, outcome.parsed ? 1 : outcome.saw_bytes ? 0 : -1, &argv[1]) != napi_ok) return false;
  napi_status status =
      taken.empty() ? napi_get_undefined(env, &argv[4]) : napi_create_buffer_copy(env, taken.size(), taken.data(), nullptr, &argv[4]);
  return status == napi_ok && HelloArguments(env, outcome, 2, 5, argv);
}

Napi::Array ParsedHelloArray(Napi::Env env, const Outcome& outcome) {
  std::vector<napi_value> values(1 + outcome.choices.size(), nullptr);
  if (!HelloArguments(env, outcome, 0, 1, values)) throw Napi::Error::New(env, "could not build the parsed hello");
  Napi::Array parsed = Napi::Array::New(env, values.size());
  for (uint32_t i = 0; i < values.size(); i++) parsed.Set(i, Napi::Value(env, values[i]));
  return parsed;
}

}  // namespace ntl
