#!/usr/bin/env bash
# Compares genledger's WebSocket bulk path with Redis running a Lua check-and-debit script.
#
# Both durable: Redis with appendonly yes + appendfsync always (fsync before replying), genledger
# in its default durable mode (--sync group: reply after the group commit's fdatasync).
#   Redis:     redis-benchmark, 50 clients, EVALSHA of bench/redis_check_and_debit.lua, with
#              pipeline 64 and unpipelined, for DURATION seconds each; ops/s measured from the
#              server's own EVALSHA call counter (INFO commandstats) over the wall time.
#   genledger: genledger-load over WebSocket, batches of 100, --pipeline 64, for DURATION s.
# Loopback only; temporary directories and every process started here are removed on exit.
#
# Usage: bench/compare_redis.sh [DURATION_SECONDS]     (default 10)
# Env:   BUILD_DIR (default build-rel: built in Release here if missing), GL_THREADS (server threads, default 2),
#        LOAD_CONNECTIONS (default 4), WORKSPACES (default 1000)
set -euo pipefail

DURATION=${1:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build-rel}
GL="$ROOT/$BUILD_DIR/genledger"
LOAD="$ROOT/$BUILD_DIR/genledger-load"
GL_THREADS=${GL_THREADS:-2}
LOAD_CONNECTIONS=${LOAD_CONNECTIONS:-4}
WORKSPACES=${WORKSPACES:-1000}

# Everything missing is installed and built here, so a clean clone can run this directly.
"$ROOT/tools/setup.sh" redis-server redis-tools
if [ ! -x "$GL" ] || [ ! -x "$LOAD" ]; then
  echo "compare_redis: building genledger and genledger-load (Release) in $BUILD_DIR" >&2
  cmake -S "$ROOT" -B "$ROOT/$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGENLEDGER_BUILD_TESTS=OFF >/dev/null
  cmake --build "$ROOT/$BUILD_DIR" --target genledger genledger-load -j "$(nproc)" >/dev/null
fi

TMP=$(mktemp -d /tmp/genledger-compare-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {   # wait_port PORT PID
  for _ in $(seq 1 100); do
    if (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "compare_redis: server exited early" >&2; return 1; }
    sleep 0.1
  done
  echo "compare_redis: port $1 did not open" >&2
  return 1
}

# ---------------------------------------------------------------- Redis
RP=$(free_port)
mkdir -p "$TMP/redis"
redis-server --port "$RP" --bind 127.0.0.1 --protected-mode yes --dir "$TMP/redis" \
  --appendonly yes --appendfsync always --save "" --daemonize no \
  --logfile "$TMP/redis/redis.log" &
PIDS+=($!)
wait_port "$RP" "${PIDS[-1]}"
RC=(redis-cli -h 127.0.0.1 -p "$RP")
SHA=$("${RC[@]}" SCRIPT LOAD "$(cat "$ROOT/bench/redis_check_and_debit.lua")")
# Workspaces ws:000000000000 .. (redis-benchmark's __rand_int__ is 12 digits) with a big limit.
"${RC[@]}" EVAL "for i=0,tonumber(ARGV[1])-1 do redis.call('HSET', string.format('ws:%012d', i), 'limit', 1000000000000000) end return 1" 0 "$WORKSPACES" >/dev/null

evalsha_calls() {
  "${RC[@]}" INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' | head -1
}
redis_run() {   # redis_run PIPELINE -> ops/s
  local before after t0 t1
  before=$(evalsha_calls); before=${before:-0}
  t0=$(date +%s.%N)
  timeout -s INT "$DURATION" redis-benchmark -h 127.0.0.1 -p "$RP" -c 50 -P "$1" -n 2000000000 \
    -r "$WORKSPACES" EVALSHA "$SHA" 2 ws:__rand_int__ user:__rand_int__ 1 >/dev/null 2>&1 || true
  t1=$(date +%s.%N)
  after=$(evalsha_calls); after=${after:-0}
  python3 -c "print(round(($after - $before) / ($t1 - $t0), 1))"
}
echo "Redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'): appendonly yes, appendfsync always; EVALSHA check-and-debit, 50 clients, ${DURATION}s each" >&2
REDIS_P64=$(redis_run 64)
echo "  pipeline 64: $REDIS_P64 ops/s" >&2
REDIS_P1=$(redis_run 1)
echo "  unpipelined: $REDIS_P1 ops/s" >&2
# Sanity: every EVALSHA debited 1 on some workspace.
SUM=$("${RC[@]}" EVAL "local s=0 for i=0,tonumber(ARGV[1])-1 do s=s+(tonumber(redis.call('HGET', string.format('ws:%012d', i), 'used')) or 0) end return s" 0 "$WORKSPACES")
CALLS=$(evalsha_calls)
echo "  check: workspaces used sum $SUM, EVALSHA calls $CALLS" >&2
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true

# ---------------------------------------------------------------- genledger
GP=$(free_port)
GL_ARGS=(--listen "127.0.0.1:$GP" --threads "$GL_THREADS")
SYNC_NOTE="(this build has no --sync flag: in-memory server, not durable)"
if "$GL" --help | grep -q -- '--data-dir'; then GL_ARGS+=(--data-dir "$TMP/genledger"); fi
if "$GL" --help | grep -q -- '--sync'; then GL_ARGS+=(--sync group); SYNC_NOTE="--sync group"; fi
"$GL" "${GL_ARGS[@]}" >"$TMP/genledger.log" 2>&1 &
PIDS+=($!)
wait_port "$GP" "${PIDS[-1]}"
echo "genledger ${SYNC_NOTE}, ${GL_THREADS} threads; genledger-load ws, ${LOAD_CONNECTIONS} connections, batch 100, pipeline 64, ${DURATION}s" >&2
set +e
"$LOAD" --target "ws://127.0.0.1:$GP/v1/ws" --connections "$LOAD_CONNECTIONS" --batch 100 \
  --pipeline 64 --duration "$DURATION" --workspaces 64 --json -q >"$TMP/load.out" 2>"$TMP/load.err"
LOAD_RC=$?
set -e
JSON=$(tail -1 "$TMP/load.out")
GL_OPS=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ops_per_sec"])' "$JSON" 2>/dev/null || echo 0)
GL_P99=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["p99_us"])' "$JSON" 2>/dev/null || echo "?")
echo "  genledger-load exit $LOAD_RC (0: verified, no errors); p99 ${GL_P99}us" >&2
if [ "$LOAD_RC" -ne 0 ]; then sed 's/^/  | /' "$TMP/load.out" "$TMP/load.err" >&2; fi

echo
printf '%-44s %14s\n' "system" "ops/s"
printf '%-44s %14s\n' "redis EVALSHA, 50 clients, pipeline 64" "$REDIS_P64"
printf '%-44s %14s\n' "redis EVALSHA, 50 clients, unpipelined" "$REDIS_P1"
printf '%-44s %14s\n' "genledger ws, batch 100 ($SYNC_NOTE)" "$GL_OPS"
python3 -c "
a, b, c = float('$GL_OPS'), float('$REDIS_P64'), float('$REDIS_P1')
print('ratio genledger / redis pipelined:   %s' % (round(a / b, 2) if b else 'n/a'))
print('ratio genledger / redis unpipelined: %s' % (round(a / c, 2) if c else 'n/a'))"
exit "$LOAD_RC"
