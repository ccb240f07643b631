#!/usr/bin/env bash
# What an idle client connection costs the gateway, and whether the memory comes back after
# the connections close (2 s after, and IDLE s after with no traffic in between):
# `conn-memory` (tools/src/bin/conn-memory.rs) against one gateway (translate target, one
# worker) in front of bench-upstream, all on 127.0.0.1.
#
#   bash bench/conn-memory.sh                        # 256, 2000 and 9000 connections
#   CONNS="2000" GW_BIN=/tmp/old/legacy-gateway bash bench/conn-memory.sh   # another build
#
# Needs a release build (`cargo build --release --workspace --bins`). Prints one JSON line
# per run and appends them to bench/results/conn-memory-<UTC date>.jsonl. Every process it
# starts is stopped on exit. Settings: CONNS ("256 2000 9000"), PROTOCOLS ("http1 h2-idle"),
# ROUNDS (2), WORKERS (1), IDLE (5), PORT_BASE (18380), LABEL, GW_BIN, GW_ENV (extra environment for the gateway,
# e.g. "MALLOC_ARENA_MAX=1").
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${CARGO_TARGET_DIR:-target}/release"
GW_BIN="${GW_BIN:-$BIN/legacy-gateway}"
CONNS="${CONNS:-256 2000 9000}"
PROTOCOLS="${PROTOCOLS:-http1 h2-idle}"
WORKERS="${WORKERS:-1}"
ROUNDS="${ROUNDS:-2}"
IDLE="${IDLE:-5}"
PORT_BASE="${PORT_BASE:-18380}"
LABEL="${LABEL:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
GW_ENV="${GW_ENV:-}"
OUT="bench/results/conn-memory-$(date -u +%Y-%m-%d).jsonl"
UPSTREAM_PORT=$PORT_BASE
LISTEN_PORT=$((PORT_BASE + 1))
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Each connection is a descriptor in the gateway and in the driver.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    exit 1
}

"$BIN/bench-upstream" --listen "127.0.0.1:$UPSTREAM_PORT" >"$WORK/upstream.log" 2>&1 &
PIDS+=("$!")
wait_port "$UPSTREAM_PORT"

sed -e "s#@UPSTREAM_PORT@#$UPSTREAM_PORT#g" -e "s#@LISTEN_PORT@#$LISTEN_PORT#g" \
    bench/gateway-translate.toml >"$WORK/gateway.toml"
# A fresh gateway per run: what one run leaves behind must not be charged to the next.
for protocol in $PROTOCOLS; do
    for n in $CONNS; do
        # shellcheck disable=SC2086
        env RUST_LOG=warn $GW_ENV "$GW_BIN" serve --workers "$WORKERS" --config "$WORK/gateway.toml" \
            --admin-listen "127.0.0.1:$((LISTEN_PORT + 1))" >"$WORK/gateway.log" 2>&1 &
        gw=$!
        PIDS+=("$gw")
        wait_port "$LISTEN_PORT"
        "$BIN/conn-memory" --addr "127.0.0.1:$LISTEN_PORT" --pid "$gw" --connections "$n" \
            --protocol "$protocol" --rounds "$ROUNDS" --idle "$IDLE" --label "$LABEL${GW_ENV:+ $GW_ENV}" | tee -a "$OUT"
        kill "$gw"
        wait "$gw" 2>/dev/null || true
    done
done
