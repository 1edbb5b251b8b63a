#!/usr/bin/env bash
# Installs every Debian package genledger needs to build, test and benchmark.
# Idempotent: packages already present are skipped, and apt is only touched when
# something is missing. Run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-json1.81-dev
  libconcurrentqueue-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libspdlog-dev ccache
  libssl-dev openssl   # OpenSSL: token digests and RAND_bytes, webhooks' TLS and HMAC; the CLI makes test CAs
  python3-websockets   # tools/soak.py's WebSocket client, the Python client's AsyncClient, tests/openapi_test.py
  python3-pytest python3-pip python3-setuptools python3-wheel   # clients/python: install, tests
  python3-jsonschema python3-yaml   # tests/openapi_test.py: docs/openapi.yaml against real traffic
  chromium chromium-driver python3-selenium   # the dashboard's browser test
  clang-14 libclang-rt-14-dev   # libFuzzer targets (tools/fuzz.sh)
)
# Extra packages a caller may ask for (e.g. bench/compare_redis.sh asks for redis-server).
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
