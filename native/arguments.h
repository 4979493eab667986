// Checks on every number that crosses from JS into C++. A double that is NaN, infinite,
// fractional or out of range never reaches a cast: the call throws a RangeError (a TypeError
// for a value that is not a number at all) whose `code` is ERR_INVALID_OPTION, the same code
// the TypeScript layer uses for the same mistake.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace ntl {

// How a rejected value is shown in a message: numbers as JS prints them, anything else by type.
std::string DescribeValue(const Napi::Value& value);

// The error both kinds of failed check throw: `message`, with code ERR_INVALID_OPTION.
Napi::Error InvalidArgument(Napi::Env env, bool wrong_type, const std::string& message);

// `value` as an integer in [min, max], or throws (see above). `name` is used in the message.
int64_t RequireInteger(Napi::Env env, const Napi::Value& value, const char* name, int64_t min, int64_t max);

// options[name] as an integer in [min, max]; `fallback` when the property is undefined.
int64_t OptionalInteger(Napi::Env env, const Napi::Object& options, const char* name, int64_t fallback, int64_t min,
                        int64_t max);

// options[name] as a boolean; false when the property is undefined, throws (a TypeError with
// code ERR_INVALID_OPTION) for anything else.
bool OptionalBoolean(Napi::Env env, const Napi::Object& options, const char* name);

}  // namespace ntl
