#!/usr/bin/env bash
# What capture costs per request, in user-space instructions under callgrind (the method of
# ../shared/tools/floor/compare.sh: counts hardly move with a shared machine's neighbours).
# The call is compare.sh's: legacy mode, `PUT /User/u1 {"Password":…}` to an nginx upstream,
# `wrk -c4`, the gateway on core 0 with one worker. Two rows: without `[capture]`, and with it
# at 100% (`writes = true`, so the masking runs on every call). The writer thread's work is
# counted too: the window closes only once every line of the calls in it is written (the
# gateway's own counters say so), and the queue is large enough that none is dropped.
#
#   cargo build --release --workspace --bins && bash bench/capture.sh
#   GW=path/to/legacy-gateway  SECONDS_MEASURED=4  TOP=20 (the top functions by self cost)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GW=${GW:-${CARGO_TARGET_DIR:-$ROOT/target}/release/legacy-gateway}
DURATION=${SECONDS_MEASURED:-4}
TOP=${TOP:-0}
for t in nginx wrk valgrind callgrind_control curl; do
  command -v $t >/dev/null || { echo "needs $t (apt-get install nginx-light wrk valgrind curl)"; exit 2; }
done
[ -x "$GW" ] || { echo "no $GW: cargo build --release --workspace --bins"; exit 2; }
# Ports apart from compare.sh's (294xx), so both can run on one machine.
UP=29510 PX=29511 ADMIN=29911
W=$(mktemp -d); trap 'kill $(cat $W/up.pid 2>/dev/null) 2>/dev/null; rm -rf $W' EXIT
BODY='{"message":{"code":"UsersOrchestrator_S200_11","text":"Update password completed.","type":"Success"},"meta":null}'
cat > $W/up.conf <<C
worker_processes 1; pid $W/up.pid; error_log $W/up.err; daemon on;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$UP reuseport; keepalive_requests 1000000;
  location / { default_type application/json; return 200 '$BODY'; } } }
C
cat > $W/put.lua <<'L'
wrk.method = "PUT"
wrk.body = '{"Password":"Str0ng-Passw0rd"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer eyJ.bench.token"
wrk.headers["X-SourceSystem"] = "bench"
wrk.headers["X-ClientCode"] = "C1"
wrk.headers["X-PaperCode"] = "P1"
wrk.headers["X-ClientGroupCode"] = "G1"
L
printf '' > $W/off.toml
cat > $W/on.toml <<C
[capture]
file = "$W/capture.jsonl"
writes = true
buffer_lines = 100000000
C
taskset -c 1 nginx -c $W/up.conf -p $W/ || exit 2

# Sum of a counter family's samples in the admin metrics.
counter() { curl -s http://127.0.0.1:$ADMIN/_gateway/metrics | awk -v n="$1" 'index($0, n) == 1 { s += $NF } END { print s + 0 }'; }
# Waits (bounded) until every answered call has its line written, when capture is on.
caught_up() {
  [ "$1" = on ] || return 0
  for _ in $(seq 600); do
    [ "$(counter 'gateway_capture_lines_total{outcome="written"}')" -ge "$(counter 'gateway_requests_total{route="user-api.legacy"')" ] && return 0
    sleep 0.1
  done
  echo "the writer did not catch up" >&2
}
measure() { # on|off
  local row=$1
  LEGACY_GATEWAY_CONFIG=$W/$row.toml RUST_LOG=warn taskset -c 0 valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file=$W/$row.%p $GW serve --listen 127.0.0.1:$PX --admin-listen 127.0.0.1:$ADMIN \
    --workers 1 --mode legacy --user-api http://127.0.0.1:$UP --registry-api http://127.0.0.1:$UP \
    --orchestrator http://127.0.0.1:$UP >$W/$row.log 2>&1 &
  local vp=$!
  for _ in $(seq 150); do curl -s -o /dev/null http://127.0.0.1:$PX/ && break; sleep 0.2; done
  taskset -c 1 wrk -t1 -c4 -d2s -s $W/put.lua http://127.0.0.1:$PX/User/u1 >/dev/null
  caught_up $row
  callgrind_control -i on $vp >/dev/null 2>&1
  local n=$(taskset -c 1 wrk -t1 -c4 -d${DURATION}s -s $W/put.lua http://127.0.0.1:$PX/User/u1 | awk '/requests in/{print $1}')
  caught_up $row
  callgrind_control -i off $vp >/dev/null 2>&1; callgrind_control -d $vp >/dev/null 2>&1
  local dropped=$(counter 'gateway_capture_lines_total{outcome="dropped"}')
  kill $vp; wait $vp 2>/dev/null; sleep 0.3
  local ir=$(awk '/Collected/{print $NF}' $W/$row.log | tail -1)
  printf 'capture %-4s %9s instructions/request  (%s requests; lines dropped: %s)\n' \
    "$row" "$(( ${ir:-0} / (${n:-0} > 0 ? n : 1) ))" "${n:-0}" "$dropped"
  if [ "$TOP" -gt 0 ]; then
    callgrind_annotate --inclusive=no $(ls $W/$row.[0-9]* | tail -1) 2>/dev/null | sed -n '/file:function/,$p' | sed -n "3,$((TOP + 2))p" | cut -c1-150
  fi
}
measure off
measure on
echo "lines written in all: $(wc -l < $W/capture.jsonl 2>/dev/null || echo 0)"
