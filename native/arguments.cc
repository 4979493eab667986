#include "arguments.h"

#include <cmath>
#include <string>

namespace ntl {

std::string DescribeValue(const Napi::Value& value) {
  switch (value.Type()) {
    case napi_number: {
      double number = value.As<Napi::Number>().DoubleValue();
      if (std::isnan(number)) return "NaN";
      if (std::isinf(number)) return number > 0 ? "Infinity" : "-Infinity";
      // Exact for every integer a double holds; fractions and large values keep JS's spelling.
      napi_value text = nullptr;
      if (napi_coerce_to_string(value.Env(), value, &text) == napi_ok) return Napi::String(value.Env(), text).Utf8Value();
      return "a number";
    }
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_boolean:
      return "a boolean";
    case napi_string:
      return "a string";
    case napi_symbol:
      return "a symbol";
    case napi_bigint:
      return "a bigint";
    case napi_function:
      return "a function";
    default:
      return "an object";
  }
}

Napi::Error InvalidArgument(Napi::Env env, bool wrong_type, const std::string& message) {
  Napi::Error error = wrong_type ? static_cast<Napi::Error>(Napi::TypeError::New(env, message))
                                 : static_cast<Napi::Error>(Napi::RangeError::New(env, message));
  error.Set("code", Napi::String::New(env, "ERR_INVALID_OPTION"));
  return error;
}

int64_t RequireInteger(Napi::Env env, const Napi::Value& value, const char* name, int64_t min, int64_t max) {
  // The message is built only for a bad value: this runs for every connection (watch(), the
  // batch calls), where formatting it each time cost about a microsecond.
  auto refuse = [&](bool wrong_type) {
    return InvalidArgument(env, wrong_type,
                           std::string(name) + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                               ", got " + DescribeValue(value));
  };
  if (!value.IsNumber()) throw refuse(true);
  double number = value.As<Napi::Number>().DoubleValue();
  // Compared as doubles before any cast: min and max are far inside the range a double holds
  // exactly, and NaN fails every comparison.
  bool in_range = std::isfinite(number) && std::trunc(number) == number && number >= static_cast<double>(min) &&
                  number <= static_cast<double>(max);
  if (!in_range) throw refuse(false);
  return static_cast<int64_t>(number);
}

int64_t OptionalInteger(Napi::Env env, const Napi::Object& options, const char* name, int64_t fallback, int64_t min,
                        int64_t max) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return fallback;
  return RequireInteger(env, value, name, min, max);
}

bool OptionalBoolean(Napi::Env env, const Napi::Object& options, const char* name) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return false;
  if (!value.IsBoolean()) throw InvalidArgument(env, true, std::string(name) + " must be a boolean, got " + DescribeValue(value));
  return value.As<Napi::Boolean>().Value();
}

}  // namespace ntl
