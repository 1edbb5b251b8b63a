#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test with CTest, the Python
# client's tests (clients/python) and the Node client's (tools/test_node.sh), then the same
# suite under ASan+UBSan, the concurrency tests under TSan, and a short run of each fuzz target
# (docs/testing.md). The plain suite includes the dashboard in headless Chromium (CTest
# browser_dashboard, docs/dashboard.md), skipped with a message only where Chromium cannot start.
# Exits non-zero on any build or test failure, sanitizer report or fuzz finding.
# `tools/test.sh --quick` stops after the plain suite and the client tests. Prints each phase's
# duration.
# FUZZ_SECONDS (default 30) sets the fuzz run per target.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

phase() {
  local name="$1"; shift
  local start=$SECONDS
  echo "== test.sh: $name"
  "$@"
  echo "== test.sh: $name passed in $((SECONDS - start)) s"
}

plain_suite() {
  configure_and_build RelWithDebInfo
  (cd "$build_dir" && ctest --output-on-failure -j "$jobs" --timeout 900)
}

# The Python client (clients/python), installed with pip from the directory (offline, into a
# temporary directory: Debian's Python is externally managed), tested against build/genledger.
python_client() {
  local target; target="$(mktemp -d)"
  /usr/bin/python3 -m pip install -q --no-build-isolation --no-index --no-warn-script-location --root-user-action=ignore \
    --target "$target" "$repo_root/clients/python"
  (cd "$repo_root" && PYTHONPATH="$target" GENLEDGER_BIN="$build_dir/genledger" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider clients/python/tests)
  rm -rf "$target" "$repo_root/clients/python/build" "$repo_root"/clients/python/*.egg-info
}

phase setup "$repo_root/tools/setup.sh"
phase "plain build + tests" plain_suite
phase "Python client tests" python_client
phase "Node client tests" "$repo_root/tools/test_node.sh"
if [ "${1:-}" = "--quick" ]; then exit 0; fi
phase "ASan+UBSan build + tests" "$repo_root/tools/sanitize.sh" asan
phase "TSan build + concurrency tests" "$repo_root/tools/sanitize.sh" tsan
phase "fuzz build + ${FUZZ_SECONDS:-30} s per target" "$repo_root/tools/fuzz.sh" all "${FUZZ_SECONDS:-30}"
