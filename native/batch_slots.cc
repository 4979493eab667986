#include "batch_slots.h"

namespace ntl {

int32_t* BatchSlotsOf(napi_env env, napi_value array, size_t count) {
  if (array == nullptr) return nullptr;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  // A detached buffer reads as length 0 and no data.
  if (napi_get_typedarray_info(env, array, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_int32_array || length < count || data == nullptr) {
    return nullptr;
  }
  return static_cast<int32_t*>(data);
}

}  // namespace ntl
