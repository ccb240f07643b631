#!/usr/bin/env bash
# bench/profile.sh — user-space instructions per request of one gateway target, under
# valgrind's callgrind (issue #6). Instruction counts do not depend on the neighbours of a
# shared machine, so two builds compare to within about a percent where req/s cannot.
#
#   bash bench/profile.sh [translate|action|shadow|passthrough]   (default: translate)
#
# Starts bench-upstream and the target on 127.0.0.1, warms up, zeroes the counters, sends a
# bounded closed-loop run (PROFILE_SECONDS, default 4, 4 connections), dumps, and prints
# instructions per answered request plus the top functions by self cost. The callgrind file
# stays in $PROFILE_OUT (default /tmp/legacy-gateway-profile) for callgrind_annotate.
# Needs valgrind (apt-get install valgrind) and a release build (in $CARGO_TARGET_DIR when set) of the gateway and the tools
# crate (cargo build --release --workspace --bins).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TARGET="${1:-translate}"
SECONDS_RUN="${PROFILE_SECONDS:-4}"
OUT="${PROFILE_OUT:-/tmp/legacy-gateway-profile}"
PORT_BASE="${PROFILE_PORT_BASE:-18180}"
UP=$((PORT_BASE + 1))
GW=$((PORT_BASE + 2))
STG=$((PORT_BASE + 3))
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
JWT="eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMDAxIn0.c2lnbmF0dXJl"

command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
for b in legacy-gateway bench-upstream bench-load; do
  [ -x "$BIN/$b" ] || { echo "build first: cargo build --release --workspace --bins ($BIN/$b is missing)" >&2; exit 1; }
done

rm -rf "$OUT"
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

render() { sed -e "s#@WORK@#$OUT#g" -e "s#@UPSTREAM_PORT@#$UP#g" -e "s#@STAGING_PORT@#$STG#g" -e "s#@LISTEN_PORT@#$GW#g" "$1" >"$2"; }

"$BIN/bench-upstream" --listen "127.0.0.1:$UP" >"$OUT/upstream.log" 2>&1 &
PIDS+=($!)
# The staging v4 of the shadow target (shadowed writes never go to the live orchestrator).
"$BIN/bench-upstream" --listen "127.0.0.1:$STG" >"$OUT/staging.log" 2>&1 &
PIDS+=($!)

case $TARGET in
translate | action) CONFIG=bench/gateway-translate.toml ;;
shadow) CONFIG=bench/gateway-shadow.toml ;;
passthrough) CONFIG=bench/gateway-passthrough.toml ;;
*) echo "unknown target $TARGET" >&2; exit 2 ;;
esac

render "$CONFIG" "$OUT/gateway.toml"
RUST_LOG=warn LEGACY_GATEWAY_WORKERS=1 valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.%p" \
    "$BIN/legacy-gateway" serve --config "$OUT/gateway.toml" --admin-listen 127.0.0.1:0 >"$OUT/target.log" 2>&1 &
PIDS+=($!)

case $TARGET in
translate | shadow | passthrough)
    REQ=(--url "http://127.0.0.1:$GW/User/1001" --method PUT --body '{"Password":"Abcdefg1"}') ;;
action)
    REQ=(--url "http://127.0.0.1:$GW/\$dwo3rd-userregistry-api/profileserviceregistration?action=updatechangepassword"
        --method POST -H "Host: bench.test" --body '{"oldpassword":"Abcdefg0","password":"Abcdefg1"}') ;;
esac
REQ+=(-H "Content-Type: application/json" -H "Authorization: Bearer $JWT" -H "X-SourceSystem: x"
    -H "X-ClientCode: CA" -H "X-PaperCode: PA" -H "X-ClientGroupCode: GA")

for _ in $(seq 1 300); do
    if "$BIN/bench-load" "${REQ[@]}" -c 1 -d 0.2 --warmup 0 >/dev/null 2>&1; then break; fi
    sleep 0.2
done
"$BIN/bench-load" "${REQ[@]}" -c 4 -d 2 --warmup 0 >/dev/null
CG_PIDS="$(pgrep -f "callgrind-out-file=$OUT" | tr '\n' ' ')"
for p in $CG_PIDS; do callgrind_control -z "$p" >/dev/null 2>&1 || true; done
"$BIN/bench-load" "${REQ[@]}" -c 4 -d "$SECONDS_RUN" --warmup 0 >"$OUT/load.json"
for p in $CG_PIDS; do callgrind_control -d "$p" >/dev/null 2>&1 || true; done
sleep 1

ANSWERS="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total_answers"])' "$OUT/load.json")"
# Figures of refusals (a 429 from a rate limit, a 4xx from a changed mapping) would look like
# a faster gateway: only a run where every answer is a success counts.
FAILED="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["non_2xx"])' "$OUT/load.json")"
if [ "$FAILED" != "0" ]; then
    echo "target=$TARGET: $FAILED of $ANSWERS answers were not 2xx; not a measurement (see $OUT/target.log)" >&2
    exit 1
fi
TOTAL=0
for f in "$OUT"/cg.*.1; do
    [ -e "$f" ] || continue
    n="$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')"
    TOTAL=$((TOTAL + ${n:-0}))
done
echo "target=$TARGET answers=$ANSWERS instructions=$TOTAL per_request=$((TOTAL / (ANSWERS > 0 ? ANSWERS : 1)))"
# The top functions by self cost (inclusive costs start with ~20 runtime frames at 100%).
# sed, not head: under pipefail an early-closing reader would fail the script with SIGPIPE.
for f in "$OUT"/cg.*.1; do
    [ -e "$f" ] || continue
    callgrind_annotate --inclusive=no --threshold=100 --auto=no "$f" 2>/dev/null |
        sed -n '/file:function/,$p' | grep -v -e '^--' -e '(100.0%)' | sed -n "2,$((${PROFILE_TOP:-40} + 1))p" || true
done
