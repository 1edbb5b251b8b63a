#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of fuzz/ (docs/testing.md, "Fuzzing").
#   tools/fuzz.sh TARGET SECONDS   run one target (protocol_fuzz, wal_fuzz, snapshot_fuzz,
#                                  catalog_fuzz; the "_fuzz" may be left off) for SECONDS
#   tools/fuzz.sh all SECONDS      run each target for SECONDS, one after the other
#   tools/fuzz.sh corpus           regenerate the seed corpora in fuzz/corpus/ (keeps the
#                                  hand-kept regress-* and legacy-* seeds)
# Builds with clang-14 in build-fuzz/ (GENLEDGER_FUZZ_BUILD_DIR). Each run starts from the seed
# corpus in fuzz/corpus/TARGET plus what earlier runs found (build-fuzz/corpus/TARGET, not in
# git). A crash, leak, timeout or violated property stops the run; the input is saved as
# build-fuzz/crashes/TARGET/crash-* and the script exits non-zero. Replay one input with
# build-fuzz/TARGET FILE. FUZZ_NICE=19 runs the fuzzer niced.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
targets=(protocol_fuzz wal_fuzz snapshot_fuzz catalog_fuzz)
build_dir="${GENLEDGER_FUZZ_BUILD_DIR:-$repo_root/build-fuzz}"

usage() { echo "usage: $0 {TARGET|all} SECONDS | $0 corpus" >&2; exit 2; }
[ $# -ge 1 ] || usage

build() {
  if ! command -v clang++-14 >/dev/null || ! dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q 'ok installed'; then
    "$repo_root/tools/setup.sh"
  fi
  build_targets=("${targets[@]}" fuzz_make_corpus)
  configure_and_build RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
    -DGENLEDGER_FUZZ=ON -DGENLEDGER_BUILD_TESTS=OFF -DGENLEDGER_BUILD_BENCH=OFF
}

run_one() {
  local target="$1" seconds="$2"
  local work="$build_dir/corpus/$target" crashes="$build_dir/crashes/$target"
  mkdir -p "$work" "$crashes"
  echo "fuzz: $target for ${seconds}s (seeds: fuzz/corpus/$target, found so far: $(ls "$work" | wc -l))"
  # -timeout: one input taking this long is a finding (a hang). It is wall-clock time, so it is
  # generous: on a loaded CI machine a niced fuzzer can wait seconds for a core. -rss_limit_mb
  # bounds memory.
  nice -n "${FUZZ_NICE:-0}" "$build_dir/$target" -max_total_time="$seconds" -timeout=60 \
    -report_slow_units=30 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" \
    "$work" "$repo_root/fuzz/corpus/$target" 2>"$build_dir/$target.log" || {
      tail -n 60 "$build_dir/$target.log" >&2
      echo "fuzz: $target FAILED; input saved under $crashes/" >&2
      return 1
    }
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$build_dir/$target.log" |
    sed "s/^/fuzz: $target /"
  grep -E '(cov|ft): ' "$build_dir/$target.log" | tail -n 1 | sed "s/^/fuzz: $target /"
}

case "$1" in
  corpus)
    build
    # Hand-kept seeds stay: regress-* (inputs that found a bug) and legacy-* (formats the
    # generator no longer writes, e.g. snapshot payload v3).
    if [ -d "$repo_root/fuzz/corpus" ]; then
      find "$repo_root/fuzz/corpus" -type f ! -name 'regress-*' ! -name 'legacy-*' -delete
    fi
    "$build_dir/fuzz_make_corpus" "$repo_root/fuzz/corpus"
    echo "fuzz: seed corpora written to fuzz/corpus/"
    ;;
  all)
    [ $# -eq 2 ] || usage
    build
    status=0
    for t in "${targets[@]}"; do run_one "$t" "$2" || status=1; done
    exit $status
    ;;
  *)
    [ $# -eq 2 ] || usage
    target="${1%_fuzz}_fuzz"
    [[ " ${targets[*]} " == *" $target "* ]] || usage
    build
    run_one "$target" "$2"
    ;;
esac
