// Where a worker thread finds the dispatcher it serves: a process-wide lookup, by id, of weak
// references.
//
// Why process-wide: a dispatcher is made on the thread that listens, and the queues that take
// its connections are made in the worker threads, each another environment with an Addon of its
// own (native/addon.h); the workers learn only the dispatcher's id. Environments of one process
// share the addon's code and statics, so this one table is what they have in common.
//
// Who owns what: the environment that made a dispatcher owns it. Its Addon holds the
// dispatcher's main-loop side (an EnvResource, native/dispatcher.cc), which alone stops the
// accept thread and closes the listening socket: by close(), or by that environment's teardown.
// The table holds weak references only, so a lookup never keeps a dispatcher alive, and an
// entry leaves the table when its dispatcher starts closing: a worker then finds nothing. A queue
// that found it shares the dispatcher's state (std::shared_ptr) only to hand back what was
// dispatched to it and publish its books; it never closes the listener.
#pragma once

#include <memory>

namespace ntl {

struct DispatchShared;

// Gives `shared` its id (unique in the process) and makes it findable.
void RegisterDispatcher(const std::shared_ptr<DispatchShared>& shared);
// The dispatcher with that id while it is open; nullptr once it started closing (or never was).
std::shared_ptr<DispatchShared> FindDispatcher(int id);
void UnregisterDispatcher(int id);

}  // namespace ntl
