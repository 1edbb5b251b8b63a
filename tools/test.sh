#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test with CTest.
# Exits non-zero on any build or test failure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"$repo_root/tools/setup.sh"
configure_and_build RelWithDebInfo
cd "$build_dir"
ctest --output-on-failure -j "$jobs" --timeout 900
