#!/usr/bin/env bash
# Builds the server (target genledger only, when out of date) and runs the Node client's tests
# (clients/node, `node --test`) against it: `npm ci` from the committed package-lock.json (the
# npm registry must be reachable), compile with tsc, start real servers on ephemeral ports.
# Needs Node >= 18 and npm; installs Debian's nodejs and npm when neither is present.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  "$repo_root/tools/setup.sh" nodejs npm
fi
build_targets=(genledger)
configure_and_build RelWithDebInfo
cd "$repo_root/clients/node"
npm ci --no-audit --no-fund
GENLEDGER_BIN="$build_dir/genledger" npm test
