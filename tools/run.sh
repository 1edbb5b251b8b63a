#!/usr/bin/env bash
# Installs what is missing, builds genledger in Release mode and starts the server with the
# embedded default catalog. Extra arguments go to the server (see `genledger --help`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# A Release tree of its own, so alternating with tools/test.sh does not rebuild everything.
build_dir="${GENLEDGER_BUILD_DIR:-$repo_root/build-release}"
"$repo_root/tools/setup.sh"
# Only what it runs: the server (tests and benchmarks are not configured in this tree).
build_targets=(genledger)
configure_and_build Release -DGENLEDGER_BUILD_TESTS=OFF -DGENLEDGER_BUILD_BENCH=OFF
exec "$build_dir/genledger" "$@"
