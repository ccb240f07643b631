#!/usr/bin/env bash
# Soak: a bounded, paced mix of every legacy route (User API password / e-mail / profile /
# mixed; updatechangepassword, registernewpassword, activatenewpassword and the old
# `activate`; about 10 % bad input) against a release build of the gateway on its embedded
# v4 sandbox, loopback only. The driver (tools/src/bin/soak/) reports total requests, answers by
# status and by route, transport errors, latency, and the gateway's memory from
# /proc/<pid>/status (VmRSS / VmHWM idle, after the warm-up, at the end, max).
#
# Fails when RSS grows by more than SOAK_RSS_GROWTH_MB (default 20 MiB) between the end of the
# warm-up and the end of the run, on any 5xx answer, on any transport error, or if the
# gateway dies. The warm-up lets the sandbox's bounded logs (10,000 events, outbox, reset
# requests) fill before the starting RSS is taken.
#
#   bench/soak.sh                                   # 3 minutes
#   SOAK_SECONDS=60 SOAK_RATE=300 bench/soak.sh
#
# Knobs: SOAK_SECONDS (180), SOAK_WARMUP_SECONDS (30), SOAK_RATE requests/s (300),
# SOAK_CONNECTIONS (8), SOAK_RSS_GROWTH_MB (20). The JSON report is also written to
# target/soak/result.json, the gateway's log (warn level) to target/soak/gateway.log.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_="${SOAK_SECONDS:-180}"
WARMUP="${SOAK_WARMUP_SECONDS:-30}"
RATE="${SOAK_RATE:-300}"
CONNECTIONS="${SOAK_CONNECTIONS:-8}"
GROWTH_MB="${SOAK_RSS_GROWTH_MB:-20}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
WORK="$TARGET_DIR/soak"
mkdir -p "$WORK"

echo "== cargo build --release (gateway and soak driver)"
cargo build --quiet --release -p legacy-gateway -p legacy-gateway-tools --bin legacy-gateway --bin soak

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
unset_env=()
while IFS= read -r name; do unset_env+=(-u "$name"); done < <(env | sed -n 's/^\(LEGACY_GATEWAY_[A-Za-z0-9_]*\)=.*/\1/p')
env "${unset_env[@]}" RUST_LOG=warn "$TARGET_DIR/release/legacy-gateway" serve --listen "127.0.0.1:$PORT" --admin-listen 127.0.0.1:0 \
  >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
cleanup() {
  kill "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "== soak: ${SECONDS_}s after a ${WARMUP}s warm-up, ${RATE} req/s over ${CONNECTIONS} connections, RSS growth bound ${GROWTH_MB} MiB (gateway pid $GW_PID, port $PORT)"
status=0
timeout $((SECONDS_ + WARMUP + 120)) "$TARGET_DIR/release/soak" \
  --url "http://127.0.0.1:$PORT" --pid "$GW_PID" \
  --seconds "$SECONDS_" --warmup "$WARMUP" --rate "$RATE" --connections "$CONNECTIONS" \
  --max-rss-growth-mb "$GROWTH_MB" >"$WORK/result.json" || status=$?
cat "$WORK/result.json"
if ! kill -0 "$GW_PID" 2>/dev/null; then
  echo "!! the gateway exited during the soak; log:"
  tail -50 "$WORK/gateway.log"
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "!! soak failed (exit $status)"
fi
exit "$status"
