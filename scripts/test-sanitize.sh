#!/usr/bin/env bash
# The addon under AddressSanitizer and UndefinedBehaviorSanitizer (`npm run test:sanitize`):
# builds it with cmake-js into build-sanitize/ (the normal build/ is untouched), then runs the
# suites that drive it hardest (accepting, worker termination, accept faults, exhaustion, churn,
# the registry, the batch hand-off, numbers from JS, refused adoptions, the peeked ClientHello)
# with every Node process loading that build, after fuzzing the ClientHello parser and the PROXY header framer. Fails when a test fails or any process wrote a sanitizer report: reports
# go to files, because a child process that aborts on one may have its stderr swallowed by the
# test that started it.
#
# Node itself is not instrumented, so the runtimes are preloaded (ASan first, as it requires),
# then scripts/ubsan_report_path.c, which sends UBSan's reports to files too.
# NATIVE_TLS_LISTENER_ADDON makes the loader take build-sanitize/ and nothing else; children and
# worker threads inherit it, and the accept-fault shim joins LD_PRELOAD after the runtimes.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

# The suites to run: the arguments (test file names without .test.js), or these.
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(tcp_listener accept_faults exhaustion worker tls_worker churn registry
  descriptor_handoff descriptor_ownership accept_thread accept_thread_faults worker_queue_bound descriptor_passing_limits acceptor_options adopted_descriptors admission peer_address direct_tls_socket
  peeked_hello proxy_native proxied_hello)
addon="$root/build-sanitize/Release/native_acceptor.node"

runtimes=()
for library in libasan.so libubsan.so; do
  runtime="$(gcc -print-file-name="$library")"
  [ -e "$runtime" ] || { echo "gcc has no $library (Debian: libasan8, libubsan1)" >&2; exit 1; }
  runtimes+=("$runtime")
done

# Kept when the run fails, for a closer look.
reports="$(mktemp -d "${TMPDIR:-/tmp}/ntl-sanitize.XXXXXX")"
keep_reports=0
trap '[ "$keep_reports" -eq 1 ] || rm -rf "$reports"' EXIT

echo "== addon with -fsanitize=address,undefined (cmake-js, build-sanitize/)"
node_modules/.bin/cmake-js rebuild --out build-sanitize --CDNTL_SANITIZE=ON >"$reports/build.log" 2>&1 ||
  { cat "$reports/build.log"; exit 1; }
for library in libasan libubsan; do
  readelf -d "$addon" | grep -q "NEEDED.*\[$library\." ||
    { echo "$addon is not linked with $library: not a sanitized build" >&2; exit 1; }
done
cc -shared -fPIC -O2 -Wall -o build-sanitize/ubsan_report_path.so scripts/ubsan_report_path.c -ldl
node_modules/.bin/tsc -p tsconfig.json

# fuzz NAME DIR MAX_LEN SOURCES...: fuzzes one bounded parser under ASan and UBSan from the seeds in
# DIR/seeds. With clang: libFuzzer for NTL_FUZZ_SECONDS (default 30); without it, gcc and a
# deterministic mutation driver (native/fuzz/standalone_driver.cc) over the same seeds.
fuzz_flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
fuzz() {
  local name="$1" dir="$2" max_len="$3"
  shift 3
  mkdir -p "$dir/corpus"
  if command -v clang++ >/dev/null && clang++ -fsanitize=fuzzer,address,undefined "${fuzz_flags[@]}" \
      "$@" -o "$dir/$name-fuzz" 2>"$reports/$name-fuzz-build.log"; then
    cp "$dir"/seeds/* "$dir/corpus/"
    "$dir/$name-fuzz" -max_total_time="${NTL_FUZZ_SECONDS:-30}" -max_len="$max_len" -print_final_stats=1 \
      "$dir/corpus" >"$reports/$name-fuzz.log" 2>&1 || { cat "$reports/$name-fuzz.log"; keep_reports=1; exit 1; }
    grep -E '^(Done|stat::number_of_executed_units)' "$reports/$name-fuzz.log" || true
  else
    g++ -fsanitize=address,undefined "${fuzz_flags[@]}" "$@" native/fuzz/standalone_driver.cc -o "$dir/$name-driver"
    ASAN_OPTIONS=detect_leaks=1 "$dir/$name-driver" 200000 "$dir"/seeds/*
  fi
}

echo "== the ClientHello parser (native/hello_parse.cc) fuzzed under ASan and UBSan"
# Seeds: real hellos.
hello_dir="build-sanitize/hello-fuzz"
node scripts/hello-fuzz-seeds.mjs "$hello_dir/seeds" >/dev/null
fuzz hello-parse "$hello_dir" 140000 native/hello_parse.cc native/fuzz/hello_parse_fuzz.cc

echo "== the PROXY header framer (native/proxy_frame.cc) fuzzed under ASan and UBSan"
# Seeds: a first byte choosing the accepted versions, then a version 1 line or a version 2
# header (IPv4 with a TLV) followed by the start of a TLS record.
frame_dir="build-sanitize/proxy-frame-fuzz"
mkdir -p "$frame_dir/seeds"
printf '\x02PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n\x16\x03\x01' >"$frame_dir/seeds/v1"
printf '\x02PROXY UNKNOWN\r\n' >"$frame_dir/seeds/v1-unknown"
printf '\x01\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x12\xc0\x00\x02\x01\xc6\x33\x64\x02\xdc\x04\x01\xbb\x04\x00\x03\x00\x00\x00\x16\x03\x01' >"$frame_dir/seeds/v2"
printf '\x03\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00' >"$frame_dir/seeds/v2-local"
fuzz proxy-frame "$frame_dir" 70000 native/proxy_frame.cc native/fuzz/proxy_frame_fuzz.cc

export NATIVE_TLS_LISTENER_ADDON="$addon"
export LD_PRELOAD="${runtimes[*]} $root/build-sanitize/ubsan_report_path.so"
# Errors abort the process that has them. Leak checking stays on (in the mocha process: see
# scripts/sanitize-leak-scope.cjs) but does not decide exit codes (LSAN exitcode=0, a flag ASan
# shares, hence abort_on_error): Node leaves allocations of its own behind, not ours to judge.
# Leaks are judged below, from the reports: those allocated through the addon fail the run.
# Node's and OpenSSL's allocations pass through ASan's allocator too: with its default 256 MB
# quarantine and 30-frame allocation stacks a TLS handshake costs three times the CPU, and the
# suites' timeouts (1 s handshakes in churn) start to bite on 2 cores. The addon's objects are
# small; a use after free is still caught within 64 MB of later frees.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:log_path=$reports/asan:quarantine_size_mb=64:malloc_context_size=10"
export LSAN_OPTIONS="exitcode=0"
# No log_path in UBSAN_OPTIONS: gcc's UBSan would hand it to ASan (scripts/ubsan_report_path.c).
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
export NTL_UBSAN_LOG_PATH="$reports/ubsan"

echo "== the sanitized addon is the one every process loads"
node --input-type=module -e "
import fs from 'node:fs';
import { nativeAvailable } from './dist/src/index.js';
import { loadNativeBinding } from './dist/src/native/load.js';
const loaded = loadNativeBinding().path;
const mapped = fs.readFileSync('/proc/self/maps', 'utf8').includes(loaded);
if (!nativeAvailable() || loaded !== process.env.NATIVE_TLS_LISTENER_ADDON || !mapped) {
  console.error('not the sanitized addon:', JSON.stringify({ nativeAvailable: nativeAvailable(), loaded, failures: loadNativeBinding().failures }));
  process.exit(1);
}
console.log('nativeAvailable() is true and the binding came from', loaded);
"

echo "== ${suites[*]} (native backend) under ASan and UBSan"
specs=()
for suite in "${suites[@]}"; do specs+=("dist/test/$suite.test.js"); done
status=0
# The js backend's tests are left out: they run no addon code beyond what the native ones do.
node_modules/.bin/mocha --require ./scripts/sanitize-leak-scope.cjs --grep 'js backend' --invert "${specs[@]}" ||
  status=$?
unset LD_PRELOAD ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS NTL_UBSAN_LOG_PATH

echo "== sanitizer reports"
found=0
# Anything ASan or UBSan found, in any process (leaks aside).
for report in "$reports"/asan.* "$reports"/ubsan.*; do
  [ -e "$report" ] || continue
  if grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error' -e 'ERROR: UndefinedBehaviorSanitizer' "$report"; then
    echo "--- $report"
    cat "$report"
    found=1
  fi
done
# Leaks: one block per leak, kept when a frame is in the addon (its module, its sources, or the
# node-addon-api code compiled into it). Node's own exit-time leaks are not ours to judge.
ignored=0
for report in "$reports"/asan.*; do
  [ -e "$report" ] || continue
  leaks="$(awk -v sources="$root/native/" '
    function ours(text) { return index(text, "native_acceptor.node") || index(text, sources) || index(text, "node-addon-api/") }
    /^(Direct|Indirect) leak of/ { block = $0; inleak = 1; next }
    inleak && /^$/ { if (ours(block)) print block "\n"; inleak = 0; next }
    inleak { block = block "\n" $0 }' "$report")"
  if [ -n "$leaks" ]; then
    echo "--- leaks through the addon, from $report"
    echo "$leaks"
    found=1
  fi
  ignored=$((ignored + $(grep -c -E '^(Direct|Indirect) leak of' "$report" || true)))
done
if [ "$found" -eq 0 ]; then echo "none ($ignored leak reports from Node itself, ignored)"; fi

if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
  keep_reports=1
  echo "sanitizer run FAILED (mocha exit status $status; reports kept in $reports)" >&2
  exit 1
fi
echo "sanitizer run clean"
