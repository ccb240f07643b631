#!/usr/bin/env bash
# Replay rate: N generated capture lines (reads of the sandbox's three users, each answer as
# the legacy backend would give it) replayed against the embedded sandbox by the release
# binary, at each concurrency given. Prints calls/s per run (the binary's own summary line)
# and the CPU seconds the run used; everything stays on 127.0.0.1 and the run ends by itself.
#
#   bench/replay.sh                      # N=20000, CONCURRENCY="1 8 32"
#   N=100000 CONCURRENCY=16 bench/replay.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/legacy-gateway}
N=${N:-20000}
CONCURRENCY=${CONCURRENCY:-"1 8 32"}
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT

[ -x "$BIN" ] || cargo build --release

python3 - "$N" > "$DATA/capture.jsonl" <<'EOF'
import json, sys
users = {
    "1001": ("alice@example.test", "Alice", "Anderson"),
    "1002": ("bob@example.test", "Bob", "Brown"),
}
for i in range(int(sys.argv[1])):
    uid = "1001" if i % 2 == 0 else "1002"
    email, first, last = users[uid]
    rid = f"bench-{i}"
    print(json.dumps({
        "v": 1, "time": "2026-12-07T00:00:00.000Z", "route": "user-api", "part": "read",
        "tenant": "CA", "method": "GET", "path": f"/User/{uid}", "query": None,
        "headers": {"authorization": "<redacted>", "x-sourcesystem": "bench", "x-clientcode": "CA",
                    "x-papercode": "PA", "x-clientgroupcode": "GA", "x-request-id": rid},
        "legacy": {"status": 200, "body": {"Code": 0, "Errors": [], "Result": {
            "CustomerRegistrationId": uid, "Email": email, "FirstName": first, "LastName": last}},
            "SessionId": None, "RequestId": "legacy"}},
    }))
EOF

for c in $CONCURRENCY; do
    /usr/bin/env time -f "cpu %U user + %S sys s, max RSS %M KB" \
        "$BIN" replay "$DATA/capture.jsonl" --concurrency "$c" --progress never >"$DATA/out" 2>"$DATA/err" || true
    echo "concurrency $c: $(tail -1 "$DATA/out")"
    tail -1 "$DATA/err"
done
