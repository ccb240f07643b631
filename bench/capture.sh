#!/usr/bin/env bash
# What capture costs per request: compare.sh's `gateway-legacy` row (legacy mode, PUT /User/u1
# with a password: a write, so every secret-masking step runs) without [capture], then with it
# at 100% (`writes = true`), in user-space instructions per request under callgrind, the writer
# thread included. The queue is made large enough that no line is dropped, so every request's
# line is paid for. Run from the project root after `cargo build --release --workspace --bins`.
#
#   bash bench/capture.sh          # COMPARE=path/to/compare.sh, GW=path/to/legacy-gateway
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMPARE=${COMPARE:-$ROOT/../shared/tools/floor/compare.sh}
[ -f "$COMPARE" ] || COMPARE=/work/shared/tools/floor/compare.sh
[ -f "$COMPARE" ] || { echo "no compare.sh: set COMPARE"; exit 2; }
export GW=${GW:-${CARGO_TARGET_DIR:-$ROOT/target}/release/legacy-gateway}
W=$(mktemp -d); trap 'rm -rf $W' EXIT
cat > "$W/capture.toml" <<C
[capture]
file = "$W/capture.jsonl"
writes = true
buffer_lines = 10000000
C
echo "== without [capture]"
COMPARE_ONLY=gateway-legacy bash "$COMPARE"
echo "== with [capture], 100% of calls, writes included"
LEGACY_GATEWAY_CONFIG=$W/capture.toml COMPARE_ONLY=gateway-legacy bash "$COMPARE"
echo "lines written: $(wc -l < "$W/capture.jsonl" 2>/dev/null || echo 0)"
head -c 600 "$W/capture.jsonl" 2>/dev/null; echo
