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
# The sandbox's users as the legacy User API answers a read of them.
users = {
    "1001": {"CustomerRegistrationId": "1001", "Email": "alice@example.test", "FirstName": "Alice",
             "LastName": "Anderson", "LastLogoutDate": "2026-11-01T08:30:00Z", "Verified": True,
             "Metadata": {"NewsLetter": True, "Preferences": {"FavouriteSection": "sports"}}},
    "1002": {"CustomerRegistrationId": "1002", "Email": "bob@example.test", "FirstName": "Bob",
             "LastName": "Brown", "LastLogoutDate": None, "Verified": True, "Metadata": {}},
}
for i in range(int(sys.argv[1])):
    uid = "1001" if i % 2 == 0 else "1002"
    print(json.dumps({
        "v": 1, "time": "2026-12-07T00:00:00.000Z", "route": "user-api", "part": "read",
        "tenant": "CA", "method": "GET", "path": f"/User/{uid}", "query": None,
        "headers": {"authorization": "<redacted>", "x-sourcesystem": "bench", "x-clientcode": "CA",
                    "x-papercode": "PA", "x-clientgroupcode": "GA", "x-request-id": f"bench-{i}"},
        "legacy": {"status": 200, "body": {"Code": 0, "Errors": [], "Result": users[uid],
                                           "SessionId": None, "RequestId": f"bench-{i}"}},
    }))
EOF

for c in $CONCURRENCY; do
    /usr/bin/env time -f "cpu %U user + %S sys s, max RSS %M KB" \
        "$BIN" replay "$DATA/capture.jsonl" --concurrency "$c" --progress never >"$DATA/out" 2>"$DATA/err" || true
    echo "concurrency $c: $(tail -1 "$DATA/out")"
    tail -1 "$DATA/err"
done
