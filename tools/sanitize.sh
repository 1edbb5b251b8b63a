#!/usr/bin/env bash
# Builds and runs the test suite under a sanitizer (docs/testing.md, "Sanitizers").
#   tools/sanitize.sh asan   ASan+UBSan over the whole suite, in build-asan/
#   tools/sanitize.sh tsan   TSan over the concurrency tests, in build-tsan/
# Any sanitizer report fails the test that triggered it (UBSan too: -fno-sanitize-recover=all),
# and the script exits non-zero. Benchmarks are not built.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# The tests where threads share state: the ledger under concurrent load, log lanes, group
# commit and recovery, and the in-process server. (The kill -9 and binary tests run the server
# as a child process: ASan covers them.)
tsan_tests=(ledger_stress_test ledger_log_lanes_test durability_test durability_parallel_replay_test
            server_api_test server_http_test server_durability_test server_coalescing_stream_test)

case "${1:-}" in
  asan)
    build_dir="${GENLEDGER_ASAN_BUILD_DIR:-$repo_root/build-asan}"
    configure_and_build RelWithDebInfo -DGENLEDGER_SANITIZE=ON -DGENLEDGER_BUILD_BENCH=OFF
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    run=(ctest --output-on-failure -j "$jobs" --timeout 1800)
    ;;
  tsan)
    build_dir="${GENLEDGER_TSAN_BUILD_DIR:-$repo_root/build-tsan}"
    build_targets=("${tsan_tests[@]}")
    configure_and_build RelWithDebInfo -DGENLEDGER_TSAN=ON -DGENLEDGER_BUILD_BENCH=OFF
    export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:history_size=4}"
    # Each test carries its program's name as a label (genledger_test in CMakeLists.txt).
    labels="^($(IFS='|'; echo "${tsan_tests[*]}"))\$"
    run=(ctest --output-on-failure -j "$jobs" --timeout 1800 -L "$labels")
    # TSan's shadow memory layout (gcc 12) does not fit the high mmap randomization of recent
    # kernels ("unexpected memory mapping"): run without address randomization.
    if setarch "$(uname -m)" -R true 2>/dev/null; then run=(setarch "$(uname -m)" -R "${run[@]}"); fi
    ;;
  *)
    echo "usage: $0 asan|tsan" >&2
    exit 2
    ;;
esac

cd "$build_dir"
"${run[@]}"
