#!/usr/bin/env bash
# Gate latency with and without 1,000 SSE subscribers (issue 15 §1; bench/RESULTS.md, "Live
# streams"). For each round and each --stream-threads value: a fresh server and data directory,
# 16 workspaces made by a short load, then (with subscribers) bench/stream_subscribers.py, and
# 8 s of HTTP charges at 1,000/s over 16 connections; prints p50/p99/p99.9 and the load average.
#
#   bench/stream_latency.sh [BUILD_DIR]      env: ROUNDS="1 2", STS="0 1", SUBS="0 1000",
#                                                 SRVARGS="...", SUBNICE="nice -n 19", PORT=18555
set -u
here=$(cd "$(dirname "$0")" && pwd)
B=${1:-$here/../build}
port=${PORT:-18555}
dir=$(mktemp -d /tmp/genledger-stream-latency.XXXXXX)
trap 'rm -rf "$dir"' EXIT
field() { grep -o "\"$1\":[0-9]*" <<<"$2" | head -1; }
for round in ${ROUNDS:-1 2}; do
  for st in ${STS:-0 1}; do
    for subs in ${SUBS:-0 1000}; do
      rm -rf "$dir/data"
      "$B/genledger" --listen 127.0.0.1:$port --threads 2 --data-dir "$dir/data" --snapshot-interval 0 \
        --log-level warn --stream-threads "$st" ${SRVARGS:-} >/dev/null &
      srv=$!
      for _ in $(seq 1 100); do curl -sf http://127.0.0.1:$port/healthz >/dev/null && break; sleep 0.1; done
      "$B/genledger-load" --target http://127.0.0.1:$port -c 4 -d 1 >/dev/null 2>&1   # load-ws-0..15
      if [ "$subs" -gt 0 ]; then
        ${SUBNICE:-} /usr/bin/python3 "$here/stream_subscribers.py" --port $port --subscribers "$subs" \
          --workspaces 16 --seconds 14 >"$dir/subs.out" 2>&1 &
        sp=$!
        sleep 3
      fi
      r=$("$B/genledger-load" --target http://127.0.0.1:$port -c 16 --rate 1000 -d 8 --workspaces 16 --json 2>/dev/null | tail -1)
      echo "round=$round stream-threads=$st subscribers=$subs $(field p50_us "$r") $(field p99_us "$r") $(field p999_us "$r") load=$(cut -d' ' -f1 /proc/loadavg)"
      if [ "$subs" -gt 0 ]; then wait $sp; echo "  $(tail -1 "$dir/subs.out")"; fi
      kill $srv; wait $srv 2>/dev/null
    done
  done
done
