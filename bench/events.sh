#!/usr/bin/env bash
# Event-record translation end to end: stdin to stdout through the release binary, both
# directions, on generated files of 1M and 10M records, plus 10M v4 first halves that never
# complete (the bounded-memory case). Each run goes under /usr/bin/time -v; records/s (wall
# and per CPU second: the translator is one thread, so CPU seconds are "one core" even on a
# shared machine) and peak RSS go to bench/results/events-<date>.json.
#
#   bench/events.sh                                  # the current tree (built if needed)
#   BASELINE=/path/to/old/legacy-gateway bench/events.sh
#                                                    # and an older binary, in the same run
#
# Knobs: BIN, BASELINE, OUT, SIZES ("1000000 10000000"), HALVES (10000000), BASELINE_SIZES,
# BASELINE_HALVES (1000000: the old joiner holds ~2 KB per open group, 10M would need 20 GB),
# DATA (a directory for the generated files, ~7 GB for 10M; removed unless KEEP_DATA=1).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-target/release/legacy-gateway}
BASELINE=${BASELINE:-}
SIZES=${SIZES:-"1000000 10000000"}
HALVES=${HALVES:-10000000}
BASELINE_SIZES=${BASELINE_SIZES:-$SIZES}
BASELINE_HALVES=${BASELINE_HALVES:-1000000}
STAMP=$(date -u +%Y-%m-%d)
OUT=${OUT:-bench/results/events-$STAMP.json}

if [ ! -x /usr/bin/time ]; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq time
fi
if [ ! -x "$BIN" ]; then
    cargo build --release --bin legacy-gateway
fi
DATA=${DATA:-$(mktemp -d)}
mkdir -p "$DATA" bench/results
if [ "${KEEP_DATA:-0}" != 1 ]; then
    trap 'rm -rf "$DATA"' EXIT
fi
RUNS=$DATA/runs.jsonl
: > "$RUNS"

# Legacy records of the four kinds, ~160 bytes each; v4 first halves, ~190 bytes each.
gen() { # kind count file
    python3 - "$@" <<'PY'
import sys
kind, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ev = [("CHGPWD", 22), ("CHGEMAIL", 21), ("GETUSERBYID", 1042), ("PWDREQ", 64)]
with open(path, "w", buffering=1 << 20) as f:
    w = f.write
    if kind == "legacy":
        for i in range(n):
            c, e = ev[i & 3]
            w(f'{{"EventTypeCode":"{c}","EventId":{e},"CustomerRegistrationId":"{1000000+i}",'
              f'"CorrelationId":"c-{i:08d}","Timestamp":"2024-05-01T10:00:00Z","SourceSystem":"web"}}\n')
    else:
        for i in range(n):
            w(f'{{"eventTypeCode":"AUTHSYSTEM_USER_CHANGEPASSWORD","eventId":4609,"side":"authsystem",'
              f'"customerRegistrationId":"{1000000+i}","correlationId":"h-{i:08d}",'
              f'"timestamp":"2024-05-01T10:00:00Z"}}\n')
PY
}

# One measured run: label binary direction input records [extra args...]
measure() {
    local label=$1 bin=$2 dir=$3 input=$4 records=$5
    shift 5
    local tv=$DATA/time.txt
    # stderr keeps only its last lines: 10M unmatched groups are 10M report lines.
    /usr/bin/time -v -o "$tv" "$bin" events "$dir" "$@" < "$input" 2>&1 > /dev/null \
        | tail -n 3 > "$DATA/stderr.txt" || {
        echo "run failed: $label $dir $input" >&2
        tail -3 "$DATA/stderr.txt" >&2
        return 1
    }
    python3 - "$label" "$dir" "$input" "$records" "$tv" "$DATA/stderr.txt" >> "$RUNS" <<'PY'
import json, os, sys
label, direction, path, records, tv, err = sys.argv[1:7]
t = {}
for line in open(tv):
    k, _, v = line.strip().rpartition(": ")
    t[k] = v
def secs(s):
    parts = [float(p) for p in s.split(":")]
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
wall = secs(t["Elapsed (wall clock) time (h:mm:ss or m:ss)"])
cpu = float(t["User time (seconds)"]) + float(t["System time (seconds)"])
records = int(records)
summary = [l for l in open(err, errors="replace") if l.startswith("events:")][-1:]
print(json.dumps({
    "binary": label, "direction": direction, "input": os.path.basename(path),
    "records": records, "wall_s": wall, "cpu_s": round(cpu, 2),
    "records_per_s": round(records / wall), "records_per_cpu_s": round(records / max(cpu, 0.01)),
    "peak_rss_mb": round(int(t["Maximum resident set size (kbytes)"]) / 1024, 1),
    "summary": summary[0].strip() if summary else None,
}))
PY
    tail -1 "$RUNS"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
EXACT=true
for n in $SIZES; do
    gen legacy "$n" "$DATA/legacy-$n.jsonl"
    # The v4 input of to-legacy: the same records through the current binary (not measured).
    "$BIN" events to-v4 --progress never < "$DATA/legacy-$n.jsonl" > "$DATA/v4-$n.jsonl" 2> /dev/null
    v4n=$(wc -l < "$DATA/v4-$n.jsonl")
    measure current "$BIN" to-v4 "$DATA/legacy-$n.jsonl" "$n" --progress never
    measure current "$BIN" to-legacy "$DATA/v4-$n.jsonl" "$v4n" --progress never
    # The round trip is exact, byte for byte.
    "$BIN" events to-legacy --progress never < "$DATA/v4-$n.jsonl" 2> /dev/null \
        | cmp -s - "$DATA/legacy-$n.jsonl" || EXACT=false
    if [ -n "$BASELINE" ] && [[ " $BASELINE_SIZES " == *" $n "* ]]; then
        measure baseline "$BASELINE" to-v4 "$DATA/legacy-$n.jsonl" "$n"
        measure baseline "$BASELINE" to-legacy "$DATA/v4-$n.jsonl" "$v4n"
    fi
    rm -f "$DATA/legacy-$n.jsonl" "$DATA/v4-$n.jsonl"
done

gen halves "$HALVES" "$DATA/halves-$HALVES.jsonl"
measure current "$BIN" to-legacy "$DATA/halves-$HALVES.jsonl" "$HALVES" \
    --progress never --unmatched /dev/null
if [ -n "$BASELINE" ]; then
    head -n "$BASELINE_HALVES" "$DATA/halves-$HALVES.jsonl" > "$DATA/halves-$BASELINE_HALVES.jsonl"
    measure baseline "$BASELINE" to-legacy "$DATA/halves-$BASELINE_HALVES.jsonl" \
        "$BASELINE_HALVES" --unmatched /dev/null
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$RUNS" "$OUT" "$LOAD_BEFORE" "$LOAD_AFTER" "$EXACT" <<'PY'
import json, os, subprocess, sys, datetime
runs_path, out, before, after, exact = sys.argv[1:6]
runs = [json.loads(l) for l in open(runs_path)]
model = next((l.split(":", 1)[1].strip() for l in subprocess.run(
    ["lscpu"], capture_output=True, text=True).stdout.splitlines()
    if l.startswith("Model name")), "unknown")
ratios = {}
for r in runs:
    if r["binary"] != "current":
        continue
    for b in runs:
        if b["binary"] == "baseline" and b["direction"] == r["direction"] and b["input"] == r["input"]:
            key = f'{r["direction"]} {r["input"]}'
            ratios[key] = {
                "wall": round(r["records_per_s"] / b["records_per_s"], 2),
                "cpu": round(r["records_per_cpu_s"] / b["records_per_cpu_s"], 2),
            }
doc = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "machine": {"cpu": model, "cores": os.cpu_count(), "load_before": before, "load_after": after},
    "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip(),
    "round_trip_exact": exact == "true",
    "runs": runs,
    "current_vs_baseline": ratios,
}
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print(f"wrote {out}")
PY
