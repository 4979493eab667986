#!/usr/bin/env bash
# The addon's portable system calls (native/platform.h: accept + fcntl, socket + fcntl, recvmsg
# then FD_CLOEXEC, pipe + fcntl, no TCP_INFO, no TCP_DEFER_ACCEPT), the ones macOS runs, tested
# here on Linux: builds with NTL_FORCE_PORTABLE into build-portable/ (the normal build/ is
# untouched), checks that the build calls none of accept4, pipe2, then runs the core suites
# (the arguments, test file names without .test.js, or the list below) with every Node process
# loading that build (NATIVE_TLS_LISTENER_ADDON; children and worker threads inherit it).
set -euo pipefail
cd "$(dirname "$0")/.."

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(tcp_listener tls_listener registry workers descriptor_handoff adopted_descriptors upgrade peeked_hello proxy_native)
addon="$PWD/build-portable/Release/native_acceptor.node"

echo "== addon with NTL_FORCE_PORTABLE (cmake-js, build-portable/)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
node_modules/.bin/cmake-js rebuild --out build-portable --CDNTL_FORCE_PORTABLE=ON >"$log" 2>&1 || { cat "$log"; exit 1; }
# The Linux-only calls must be gone, or the suites below would test the Linux paths again.
linux_only="$(objdump -T "$addon" | grep -E -o '\b(accept4|pipe2)\b' | sort -u | tr '\n' ' ' || true)"
[ -z "$linux_only" ] || { echo "$addon still calls: $linux_only" >&2; exit 1; }
echo "the portable build calls accept and pipe, not accept4 or pipe2"
node_modules/.bin/tsc -p tsconfig.json

export NATIVE_TLS_LISTENER_ADDON="$addon"
echo "== ${suites[*]} on the portable build"
specs=()
for suite in "${suites[@]}"; do specs+=("dist/test/$suite.test.js"); done
# The JS backend's tests are left out: they run none of the addon's system calls.
node_modules/.bin/mocha --grep 'js backend' --invert "${specs[@]}"
