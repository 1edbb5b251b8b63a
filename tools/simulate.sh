#!/usr/bin/env bash
# Power-cut simulation, longer than CI's 1,000 cuts (docs/testing.md, "Power-cut simulation").
#   tools/simulate.sh [--cuts N] [--seed S] [--cuts-per-seed K]
# Runs N cuts (default 10000) in runs of K cuts (default 100) with seeds S, S+1, ... (default S:
# random, printed). A failure prints its seed and the --seed/--cuts that replay it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cuts=10000
seed=""
per_seed=100
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cuts) cuts="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --cuts-per-seed) per_seed="$2"; shift 2 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
# A replay (--seed with --cuts N) runs that one seed for N cuts.
if [[ -n "$seed" && "$cuts" -le "$per_seed" ]]; then per_seed="$cuts"; fi
[[ -n "$seed" ]] || seed=$(( (RANDOM << 15 | RANDOM) + 1 ))
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
if [[ ! -f "$build_dir/build.ninja" ]]; then
  cmake -S "$repo_root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
fi
cmake --build "$build_dir" -j "$jobs" --target simulation_test
echo "simulating $cuts power cuts, $per_seed per seed, seeds from $seed"
GENLEDGER_SIM_CUTS="$cuts" GENLEDGER_SIM_SEED="$seed" GENLEDGER_SIM_CUTS_PER_SEED="$per_seed" \
  "$build_dir/simulation_test" --gtest_brief=1
