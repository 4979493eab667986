// The prebuild runs on glibc 2.28 and later (README, checked by .ci/run). libstdc++'s headers
// (std::shared_ptr's reference counts, used by the worker dispatch) read glibc's
// __libc_single_threaded, a variable of glibc 2.32, to skip atomic operations in a
// single-threaded process; referencing it would raise the prebuild's requirement to 2.32.
// This hidden definition binds those references inside the addon instead. Its value, 0 ("more
// than one thread"), keeps every reference count atomic, which is what glibc itself says in a
// Node process, whose libuv threads exist from start-up.
#include <cstddef>  // defines __GLIBC__ where glibc is the C library

#if defined(__GLIBC__)
extern "C" {
__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;  // NOLINT: glibc's name
}
#endif
