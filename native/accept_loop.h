// The acceptor's loop, split by concern over three files that share this header:
// native/acceptor.cc (the JS object, construction and closing), native/batch_delivery.cc
// (handing a batch and events to JS, and the slots back) and native/accept_driver.cc (polling,
// accepting, and the pauses: back-off, admission limits, shedding). Ownership: acceptor.h.
#pragma once

#include <uv.h>

#include <cstdint>

#include "accept_options.h"
#include "acceptor.h"
#include "js_callback.h"

namespace ntl {

// acceptor.cc
// Releases the JS values a batch uses (never under a running batch: see BeginClose).
void ReleaseJsValues(AcceptLoop* loop);
// Stops accepting and closes the listening fd at once; frees the loop once its handles close.
void BeginClose(AcceptLoop* loop);

// Around a call into JS and whatever reads its results (native/js_callback.h).
using LoopCallbackGuard = CallbackGuard<AcceptLoop, ReleaseJsValues>;

// batch_delivery.cc
// Hands the accepted batch to JS in one callback and closes what its slots say is still ours.
void DeliverBatch(AcceptLoop* loop);
void ReportEvent(AcceptLoop* loop, AcceptEventKind kind, int err, uint64_t delay_ms);

// accept_driver.cc
void OnReadable(uv_poll_t* handle, int status, int events);
// Polls again after a pause JS ended; false (with the listener closed) when polling cannot start.
bool StartPolling(AcceptLoop* loop);
// One look at the accept queue while paused at a limit (maxQueuedConnections).
bool Shed(AcceptLoop* loop);
void StopShedding(AcceptLoop* loop);
uint64_t AdmissionPausedNs(const AcceptLoop* loop);

}  // namespace ntl
