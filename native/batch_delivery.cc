#include <unistd.h>

#include <string>

#include "accept_loop.h"
#include "batch_slots.h"
#include "js_callback.h"
#include "peer_words.h"

namespace ntl {
namespace {

// CallJs, DeliverBatch and ReportEvent run inside libuv callbacks and use plain N-API calls,
// each status checked (native/js_callback.h): a failed call just means JS took nothing.
bool CallJs(AcceptLoop* loop, Napi::FunctionReference& callback, size_t argc, const napi_value* argv) {
  if (loop->closing || callback.IsEmpty()) return false;
  return CallJsCallback(loop->env, *loop->async_context, callback, argc, argv);
}

// The Int32Array kept in `ref`, reused for every batch, when it still has `count` elements
// (JS may have detached its buffer, by transferring it); else nullptr.
int32_t* ReusedArray(napi_env env, Napi::Reference<Napi::Int32Array>& ref, napi_value* array, size_t count) {
  if (ref.IsEmpty() || napi_get_reference_value(env, ref, array) != napi_ok) return nullptr;
  return BatchSlotsOf(env, *array, count);
}

// A new Int32Array of `capacity` elements, kept in `ref` for later batches; nullptr when none
// could be made.
int32_t* NewReusedArray(napi_env env, Napi::Reference<Napi::Int32Array>& ref, napi_value* array, size_t capacity) {
  void* data = nullptr;
  napi_value buffer = nullptr;
  if (napi_create_arraybuffer(env, capacity * sizeof(int32_t), &data, &buffer) != napi_ok ||
      napi_create_typedarray(env, napi_int32_array, capacity, buffer, 0, array) != napi_ok) {
    return nullptr;
  }
  ref.Reset();
  napi_ref created = nullptr;
  if (napi_create_reference(env, *array, 1, &created) != napi_ok) return nullptr;
  ref = Napi::Reference<Napi::Int32Array>(env, created);
  return static_cast<int32_t*>(data);
}

// The slots of the loop's batch array (batch_limit of them), or nullptr when it has none.
int32_t* BatchSlots(AcceptLoop* loop, napi_value* array, size_t count) {
  return ReusedArray(loop->env, loop->batch_array, array, count);
}

// The batch's peers (native/peer_words.h): their words in the loop's reused peer array, and
// the text of each IPv6 peer that is not IPv4-mapped in a new array (undefined when the batch
// has none, as it mostly has). Both undefined when JS did not ask for peers.
bool CreatePeers(AcceptLoop* loop, napi_value* words_array, napi_value* ipv6_texts) {
  napi_env env = loop->env;
  if (napi_get_undefined(env, ipv6_texts) != napi_ok) return false;
  if (!loop->deliver_peers) return napi_get_undefined(env, words_array) == napi_ok;
  size_t count = loop->batch_peers.size();
  size_t capacity = loop->batch_limit * kPeerWords;
  int32_t* words = ReusedArray(env, loop->peer_array, words_array, count * kPeerWords);
  if (words == nullptr) words = NewReusedArray(env, loop->peer_array, words_array, capacity);
  if (words == nullptr) return false;
  std::string text;
  bool texts_made = false;
  for (size_t i = 0; i < count; i++) {
    if (WritePeerWords(loop->batch_peers[i], words + i * kPeerWords, &text) != kPeerIPv6) continue;
    napi_value entry = nullptr;
    if (!texts_made) {
      if (napi_create_array_with_length(env, count, ipv6_texts) != napi_ok) return false;
      texts_made = true;
    }
    if (napi_create_string_latin1(env, text.c_str(), text.size(), &entry) != napi_ok ||
        napi_set_element(env, *ipv6_texts, static_cast<uint32_t>(i), entry) != napi_ok) {
      return false;
    }
  }
  return true;
}

}  // namespace

void DeliverBatch(AcceptLoop* loop) {
  if (loop->batch.empty()) return;
  LoopCallbackGuard guard(loop);
  napi_env env = loop->env;
  size_t count = loop->batch.size();
  napi_handle_scope scope = nullptr;
  if (napi_open_handle_scope(env, &scope) == napi_ok) {
    // argv: the reused descriptor array, the batch's size, each descriptor's per-address slot
    // (a new array only when per-address limits are on, else undefined), the peers' words and
    // IPv6 texts (CreatePeers).
    napi_value argv[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
    int32_t* slots = BatchSlots(loop, &argv[0], count);
    if (slots == nullptr) slots = NewReusedArray(env, loop->batch_array, &argv[0], loop->batch_limit);
    int32_t* address_slots = nullptr;
    bool ready = slots != nullptr && napi_create_uint32(env, static_cast<uint32_t>(count), &argv[1]) == napi_ok;
    if (ready && loop->admission.per_address()) {
      void* address_data = nullptr;
      napi_value address_buffer = nullptr;
      ready = napi_create_arraybuffer(env, count * sizeof(int32_t), &address_data, &address_buffer) == napi_ok &&
              napi_create_typedarray(env, napi_int32_array, count, address_buffer, 0, &argv[2]) == napi_ok;
      address_slots = static_cast<int32_t*>(address_data);
    } else if (ready) {
      ready = napi_get_undefined(env, &argv[2]) == napi_ok;
    }
    if (ready && CreatePeers(loop, &argv[3], &argv[4])) {
      for (size_t i = 0; i < count; i++) {
        slots[i] = loop->batch[i];
        if (address_slots != nullptr) address_slots[i] = loop->batch_address_slots[i];
      }
      (void)CallJs(loop, loop->on_batch, 5, argv);
      // The slots are read from the array handed over, alive in this handle scope whatever the
      // callback did (a close() in it drops the loop's reference only after this batch). Each
      // slot says who owns its descriptor (acceptor.h). JS may have detached the buffer
      // (transferred it): the slots are unreadable then, and the descriptors are left alone
      // (acceptor.h); the next batch gets a new array.
      int32_t* after = BatchSlotsOf(env, argv[0], count);
      if (after == nullptr) loop->batch_array.Reset();
      for (size_t i = 0; after != nullptr && i < count; i++) {
        if (ClosedAfterBatch(after[i])) {
          close(loop->batch[i]);
          // JS never tracked it, so JS never uncounts it.
          loop->admission.Uncount(loop->batch_address_slots[i]);
        }
      }
      loop->batch.clear();
      loop->batch_address_slots.clear();
      loop->batch_peers.clear();
    }
    // Fails only for a scope that is not the innermost; nothing here opens another.
    (void)napi_close_handle_scope(env, scope);
  }
  // No array to hand over: every descriptor is still ours.
  for (size_t i = 0; i < loop->batch.size(); i++) {
    close(loop->batch[i]);
    loop->admission.Uncount(loop->batch_address_slots[i]);
  }
  loop->batch.clear();
  loop->batch_address_slots.clear();
  loop->batch_peers.clear();
}

void ReportEvent(AcceptLoop* loop, AcceptEventKind kind, int err, uint64_t delay_ms) {
  LoopCallbackGuard guard(loop);
  if (loop->closing || loop->on_event.IsEmpty()) return;
  (void)CallEventCallback(loop->env, *loop->async_context, loop->on_event, kind, err, delay_ms);
}

}  // namespace ntl
