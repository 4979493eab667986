#include "accept_books.h"

#include "js_values.h"

namespace ntl {
namespace {

Napi::Number Count(Napi::Env env, uint64_t value) { return Napi::Number::New(env, static_cast<double>(value)); }

}  // namespace

void SetAcceptCounts(Napi::Env env, Napi::Object& stats, const AcceptBooks& books) {
  stats.Set("accepted", Count(env, books.accepted));
  stats.Set("batches", Count(env, books.batches));
  stats.Set("pauses", Count(env, books.pauses));
  stats.Set("retriesByErrno", ErrnoCounts(env, books.retries_by_errno));
}

void SetRejections(Napi::Env env, Napi::Object& target, const AcceptBooks& books, bool with_shedding_cpu) {
  target.Set("rejectedPerAddress", Count(env, books.rejected_per_address));
  target.Set("rejectedAddressTableFull", Count(env, books.rejected_address_table_full));
  target.Set("rejectedQueued", Count(env, books.rejected_queued));
  if (with_shedding_cpu) target.Set("sheddingCpuMs", Napi::Number::New(env, static_cast<double>(books.shedding_cpu_ns) / 1e6));
}

}  // namespace ntl
