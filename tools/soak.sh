#!/usr/bin/env bash
# kill -9 soak of the real server (docs/testing.md, "kill -9 soak"): tools/soak.sh --cycles N
# [--seed S] [--keep] [--progress K] [--max-seconds T] [--server-arg=--flag=value ...].
# Installs what is missing, builds genledger and genledger-inspect if they are not built yet,
# then runs tools/soak.py (exit 0 pass, 1 violation with the seed printed, 2 error/time limit).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"$repo_root/tools/setup.sh"
if [ ! -x "$build_dir/genledger" ] || [ ! -x "$build_dir/genledger-inspect" ]; then
  configure_and_build RelWithDebInfo
fi
# Debian's python3 (not a pyenv one on PATH): python3-websockets is installed for it.
exec /usr/bin/python3 "$repo_root/tools/soak.py" --binary "$build_dir/genledger" \
  --inspect "$build_dir/genledger-inspect" "$@"
