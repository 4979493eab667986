#!/usr/bin/env bash
# The linux-arm64 prebuild (prebuilds/linux-arm64, cross-compiled by scripts/prebuild.mjs) on
# an arm64 Node run by qemu-user, here on x64:
#   bash scripts/test-arm64-qemu.sh <arm64 node binary>
# The loader finds the prebuild the way an installed package does (node-gyp-build, pointed by
# NATIVE_TLS_LISTENER_PREBUILD at a directory holding only prebuilds/), then a few tests of the
# core suites run on it: accepting and the connection book, TLS by SNI (ClientHello parser
# included), close() twice. Few, and on this thread only, because emulation makes every test 5
# to 10 times slower and the suites' deadlines are set for real CPUs: two worker threads
# starting under qemu on a busy machine took longer than a test's 30 s. Tests that start a child with process.execPath
# cannot run: without binfmt_misc the kernel cannot execute an arm64 binary, only qemu can.
set -euo pipefail
cd "$(dirname "$0")/.."
node_bin="${1:?usage: test-arm64-qemu.sh <arm64 node binary>}"
sysroot=/usr/aarch64-linux-gnu  # Debian's libc6-arm64-cross, installed with g++-aarch64-linux-gnu
arm64_node() { qemu-aarch64 -L "$sysroot" "$node_bin" "$@"; }

ls prebuilds/linux-arm64/*.node >/dev/null
prebuild_dir="$(mktemp -d)"
trap 'rm -rf "$prebuild_dir"' EXIT
cp -r prebuilds "$prebuild_dir/"
export NATIVE_TLS_LISTENER_PREBUILD="$prebuild_dir"

echo "== the arm64 prebuild, found by the loader, on Node $(arm64_node --version) (qemu-aarch64)"
arm64_node --input-type=module -e "
import { nativeAvailable } from './dist/src/index.js';
import { loadNativeBinding } from './dist/src/native/load.js';
const loaded = loadNativeBinding();
if (process.arch !== 'arm64' || !nativeAvailable() || !loaded.path?.startsWith('$prebuild_dir/prebuilds/linux-arm64/')) {
  console.error('not the arm64 prebuild:', JSON.stringify({ arch: process.arch, path: loaded.path, failures: loaded.failures }));
  process.exit(1);
}
console.log(process.arch, 'loaded', loaded.path);
"

echo "== tcp_listener, tls_listener, registry (a few tests each, native backend, no workers) under qemu-aarch64"
grep='^(serving clients|TLS listener: the credential is chosen by SNI|close\(\) called twice)\b.* native backend(?!, 2 workers)'
arm64_node node_modules/.bin/mocha --grep "$grep" dist/test/tcp_listener.test.js dist/test/tls_listener.test.js dist/test/registry.test.js
