#!/usr/bin/env bash
# bench/run.sh — load benchmark of legacy-gateway against nginx and a direct upstream (issue #6).
#
# Measures, in one run and interleaved in rounds so machine drift hits every target alike:
#   direct     bench-upstream itself:        PATCH /v4/Users/1001/Password {"password":…}
#   nginx      nginx proxy_pass (keep-alive) in front of it, same request
#   njs        nginx + njs translating PUT /User/1001 itself (bench/njs/): a js_content handler
#              camelCases the body, makes the v4 PATCH as a subrequest through a keep-alive
#              proxy_pass and answers the legacy envelope: what a team would otherwise build
#   translate  legacy-gateway, PUT /User/1001 {"Password":…} + the 5 legacy headers → v4 PATCH
#   shadow     legacy-gateway in shadow mode: legacy backend answers, v4 copy of every call
#   action     legacy-gateway, POST …/profileserviceregistration?action=updatechangepassword
#              (JWT with sub 1001, Host: bench.test) → v4 PATCH
#   passthrough (optional, add it to BENCH_TARGETS) legacy-gateway in legacy mode: plain
#              reverse proxy of PUT /User/1001 to bench-upstream, no translation: the gateway's
#              server/middleware/client stack alone, like for like with nginx
# For each: saturated throughput (closed loop), p50/p99/p99.9 at fixed open-loop rates
# (25/50/75 % of nginx's saturation, latency counted from the scheduled send time), CPU µs per
# request and peak RSS of the proxy process. Writes bench/results/<date>.json and prints a
# markdown table.
#
# Placement: BENCH_CORES=N puts the proxy under test on cores 0..N-1 (nginx: N workers;
# gateway: --workers N), bench-upstream and the load generator on the cores after them. When N
# is the machine's core count (2 on the CI-sized machine), nothing is pinned and everything
# shares the machine. Everything binds and connects to 127.0.0.1 only. Every process started
# here is stopped on exit (trap).
#
# Settings (environment):
#   BENCH_SECONDS=4         measured seconds of each closed-loop and open-loop run
#   BENCH_WARMUP=1          warm-up seconds before each closed-loop run (open loop: half)
#   BENCH_ROUNDS=3          rounds; each round measures every target once
#   BENCH_CONNECTIONS=64    connections for saturation and open loop
#   BENCH_RSS_CONNECTIONS=256  connections of the final closed-loop run (peak RSS)
#   BENCH_LOADS="25 50 75"  open-loop rates, in % of nginx's median saturation
#   BENCH_TARGETS="direct nginx njs translate shadow action"
#                           (add "passthrough" for the gateway's legacy mode)
#   BENCH_PORT_BASE=18080   ports BASE+1 … BASE+8 are used
#   BENCH_CORES=1           proxy cores (nginx workers, gateway --workers)
#   BENCH_PROXY_CPU / BENCH_LOAD_CPU   taskset lists; default from BENCH_CORES (0 and 1 at N=1)
#   BENCH_INSTALL=1         apt-get install nginx, libnginx-mod-http-js (njs target) and
#                           python3 when missing; 0: never (njs is then skipped if missing)
#   BENCH_BUILD=1           cargo build --release --workspace --bins first (the gateway and
#                           the tools crate); 0: use target/release as is
#                           ($CARGO_TARGET_DIR/release where CARGO_TARGET_DIR is set)
#   BENCH_OUT=bench/results/<UTC date>.json
# Defaults take about 6 minutes plus the build.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

BENCH_SECONDS="${BENCH_SECONDS:-4}"
BENCH_WARMUP="${BENCH_WARMUP:-1}"
BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-64}"
BENCH_RSS_CONNECTIONS="${BENCH_RSS_CONNECTIONS:-256}"
BENCH_LOADS="${BENCH_LOADS:-25 50 75}"
BENCH_TARGETS="${BENCH_TARGETS:-direct nginx njs translate shadow action}"
BENCH_PORT_BASE="${BENCH_PORT_BASE:-18080}"
BENCH_CORES="${BENCH_CORES:-1}"
NPROC="$(nproc)"
if [ "$BENCH_CORES" -lt "$NPROC" ]; then
    BENCH_PROXY_CPU="${BENCH_PROXY_CPU:-0-$((BENCH_CORES - 1))}"
    BENCH_LOAD_CPU="${BENCH_LOAD_CPU:-$BENCH_CORES-$((NPROC - 1))}"
else
    BENCH_PROXY_CPU="${BENCH_PROXY_CPU:-0-$((NPROC - 1))}"
    BENCH_LOAD_CPU="${BENCH_LOAD_CPU:-0-$((NPROC - 1))}"
fi
BENCH_INSTALL="${BENCH_INSTALL:-1}"
BENCH_BUILD="${BENCH_BUILD:-1}"
DATE="$(date -u +%Y-%m-%d)"
if [ "$BENCH_CORES" = 1 ]; then
    BENCH_OUT="${BENCH_OUT:-bench/results/$DATE.json}"
else
    BENCH_OUT="${BENCH_OUT:-bench/results/$DATE-cores$BENCH_CORES.json}"
fi

UPSTREAM_PORT=$((BENCH_PORT_BASE + 1))
NGINX_PORT=$((BENCH_PORT_BASE + 2))
TRANSLATE_PORT=$((BENCH_PORT_BASE + 3))
SHADOW_PORT=$((BENCH_PORT_BASE + 4))
ACTION_PORT=$((BENCH_PORT_BASE + 5))
PASSTHROUGH_PORT=$((BENCH_PORT_BASE + 6))
STAGING_PORT=$((BENCH_PORT_BASE + 7))
NJS_PORT=$((BENCH_PORT_BASE + 8))
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
# Debian's libnginx-mod-http-js puts the njs module here (nginx -V: --modules-path).
NJS_MODULE="${NJS_MODULE:-/usr/lib/nginx/modules/ngx_http_js_module.so}"

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
want() { case " $BENCH_TARGETS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---------------------------------------------------------------- tools ------------------
# nginx from Debian (the baseline proxy), its njs module for the njs target; python3 only
# aggregates the results. The load
# generator is our own (tools/src/bin/bench-load/): Debian has no wrk2, and latency has to be
# measured at a fixed rate without coordinated omission.
install_tools() {
    local missing=()
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
    # The njs target is optional: without root or with BENCH_INSTALL=0 it is skipped, not fatal.
    if want njs && [ ! -f "$NJS_MODULE" ]; then
        if [ "$BENCH_INSTALL" = 1 ] && [ "$(id -u)" = 0 ]; then
            missing+=(libnginx-mod-http-js)
        else
            log "njs module $NJS_MODULE missing (apt-get install libnginx-mod-http-js); njs will be skipped"
        fi
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$BENCH_INSTALL" = 1 ] || die "missing: ${missing[*]} (BENCH_INSTALL=0)"
    [ "$(id -u)" = 0 ] || die "missing: ${missing[*]}; run as root or install them"
    log "installing ${missing[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
install_tools
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

if [ "$BENCH_BUILD" = 1 ]; then
    log "cargo build --release --workspace --bins"
    cargo build --release --workspace --bins --quiet
fi
for b in legacy-gateway bench-upstream bench-load; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing; run cargo build --release --workspace --bins"
done

# ---------------------------------------------------------------- pinning ----------------
if [ "$(nproc)" -ge 2 ]; then
    PIN_PROXY=(taskset -c "$BENCH_PROXY_CPU")
    PIN_LOAD=(taskset -c "$BENCH_LOAD_CPU")
else
    log "warning: fewer than 2 cores: nothing is pinned, figures are not comparable"
    PIN_PROXY=()
    PIN_LOAD=()
fi

# ---------------------------------------------------------------- processes ---------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/legacy-gateway-bench.XXXXXX")"
PIDS=()

# Stops every process this script started, by pid: TERM, a short grace, then KILL.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        local alive=0
        for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.3
    done
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${BENCH_KEEP_WORK:-0}" = 1 ]; then log "scratch kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits until 127.0.0.1:$1 accepts connections (bash's /dev/tcp: no extra tool).
wait_port() {
    local port=$1 name=$2
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "$name did not listen on 127.0.0.1:$port (see $WORK/$name.log)"
}

# Renders a template: @WORK@, @WORKERS@, @UPSTREAM_PORT@, @STAGING_PORT@, @LISTEN_PORT@,
# @NJS_MODULE@.
render() {
    sed -e "s#@WORK@#$WORK#g" -e "s#@WORKERS@#$BENCH_CORES#g" -e "s#@UPSTREAM_PORT@#$UPSTREAM_PORT#g" \
        -e "s#@STAGING_PORT@#$STAGING_PORT#g" -e "s#@LISTEN_PORT@#$3#g" \
        -e "s#@NJS_MODULE@#$NJS_MODULE#g" "$1" >"$2"
}

# The unsigned JWT of the action target: {"alg":"HS256"} . {"sub":"1001"} . junk signature.
# No key is configured, so the gateway reads the claim for routing only (SPEC 1.3).
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
JWT="$(printf '{"alg":"HS256","typ":"JWT"}' | b64url).$(printf '{"sub":"1001"}' | b64url).$(printf 'bench-unsigned' | b64url)"

declare -A PID_OF PORT_OF ADMIN_PORT_OF MASTER_OF
log "scratch directory $WORK"

# bench-upstream: the v4 orchestrator and the legacy backend of every target.
"${PIN_LOAD[@]}" "$BIN/bench-upstream" --listen "127.0.0.1:$UPSTREAM_PORT" >"$WORK/upstream.log" 2>&1 &
UPSTREAM_PID=$!
PIDS+=("$UPSTREAM_PID")
wait_port "$UPSTREAM_PORT" upstream
PID_OF[direct]=$UPSTREAM_PID
PORT_OF[direct]=$UPSTREAM_PORT
# A second bench-upstream as the staging v4 of the shadow target: `check` refuses shadowed
# writes towards the live orchestrator_url.
if want shadow; then
    "${PIN_LOAD[@]}" "$BIN/bench-upstream" --listen "127.0.0.1:$STAGING_PORT" >"$WORK/staging.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$STAGING_PORT" staging
fi


# An nginx (the nginx and njs targets): master pinned with its BENCH_CORES workers.
start_nginx() {
    local name=$1 template=$2 port=$3
    mkdir -p "$WORK/$name-body" "$WORK/$name-proxy"
    render "$template" "$WORK/$name.conf" "$port"
    "${PIN_PROXY[@]}" "$NGINX" -c "$WORK/$name.conf" -p "$WORK" -e "$WORK/$name-error.log" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    MASTER_OF[$name]=$!
    wait_port "$port" "$name"
    # The workers do the proxying; their CPU and RSS are the ones reported (master: idle).
    sleep 0.2
    PID_OF[$name]="$(pgrep -P "${MASTER_OF[$name]}" | tr '\n' ' ' | sed 's/ *$//')"
    [ -n "${PID_OF[$name]}" ] || die "no $name worker process"
    PORT_OF[$name]=$port
}
want nginx && start_nginx nginx bench/nginx.conf.template "$NGINX_PORT"
# nginx + njs: the handler is loaded from the scratch directory (js_path @WORK@).
if want njs; then
    if [ -f "$NJS_MODULE" ]; then
        cp bench/njs/translate.js "$WORK/translate.js"
        start_nginx njs bench/njs/nginx.conf.template "$NJS_PORT"
    else
        log "SKIP njs: $NJS_MODULE is missing (apt-get install libnginx-mod-http-js)"
    fi
fi

# legacy-gateway: one process per target so each has its own CPU and peak-RSS figures.
# RUST_LOG=warn: at the default `info` every request writes an access-log line to stderr,
# which would dominate the cost being measured (nginx runs with access_log off too).
start_gateway() {
    local name=$1 config=$2 port=$3
    render "$config" "$WORK/$name.toml" "$port"
    if ! "$BIN/legacy-gateway" check --config "$WORK/$name.toml" >"$WORK/$name.check" 2>&1; then
        log "SKIP $name: legacy-gateway check refused $config: $(tail -n1 "$WORK/$name.check")"
        return 1
    fi
    RUST_LOG=warn "${PIN_PROXY[@]}" "$BIN/legacy-gateway" serve --workers "$BENCH_CORES" \
        --config "$WORK/$name.toml" --admin-listen "127.0.0.1:$((port + 100))" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    PID_OF[$name]=$!
    PORT_OF[$name]=$port
    # The operator endpoints (/_gateway/metrics, /_gateway/shadow) are on the admin listener.
    ADMIN_PORT_OF[$name]=$((port + 100))
    wait_port "$port" "$name"
}
want translate && { start_gateway translate bench/gateway-translate.toml "$TRANSLATE_PORT" || true; }
want shadow && { start_gateway shadow bench/gateway-shadow.toml "$SHADOW_PORT" || true; }
want action && { start_gateway action bench/gateway-translate.toml "$ACTION_PORT" || true; }
want passthrough && { start_gateway passthrough bench/gateway-passthrough.toml "$PASSTHROUGH_PORT" || true; }

# ---------------------------------------------------------------- requests ---------------
# bench-load arguments per target (URL, method, headers, body). Same password body for all.
LEGACY_HEADERS=(-H "Content-Type: application/json" -H "Authorization: Bearer $JWT"
    -H "X-SourceSystem: x" -H "X-ClientCode: CA" -H "X-PaperCode: PA" -H "X-ClientGroupCode: GA")
request_args() {
    local t=$1 port=${PORT_OF[$1]}
    case $t in
    direct | nginx)
        REQ=(--url "http://127.0.0.1:$port/v4/Users/1001/Password" --method PATCH
            -H "Content-Type: application/json" -H "Authorization: Bearer $JWT"
            -H "X-SourceSystem: x" -H "X-ClientCode: CA" -H "X-PaperCode: PA" -H "X-ClientGroupCode: GA"
            --body '{"password":"Abcdefg1"}') ;;
    translate | shadow | passthrough | njs)
        REQ=(--url "http://127.0.0.1:$port/User/1001" --method PUT "${LEGACY_HEADERS[@]}"
            --body '{"Password":"Abcdefg1"}') ;;
    action)
        REQ=(--url "http://127.0.0.1:$port/\$dwo3rd-userregistry-api/profileserviceregistration?action=updatechangepassword"
            --method POST -H "Host: bench.test" -H "Content-Type: application/json"
            -H "Authorization: Bearer $JWT" --body '{"oldpassword":"Abcdefg0","password":"Abcdefg1"}') ;;
    esac
}

# utime+stime of a process, in clock ticks (fields 14 and 15 after the command name).
# Each takes a list of pids (nginx's workers) and adds them up.
cpu_ticks() { local p; for p in $1; do cat "/proc/$p/stat"; done | awk '{ sub(/.*\) /, ""); s += $12 + $13 } END { print s }'; }
hwm_kb() { local p; for p in $1; do cat "/proc/$p/status"; done | awk '/^VmHWM:/ { s += $2 } END { print s }'; }
rss_kb() { local p; for p in $1; do cat "/proc/$p/status"; done | awk '/^VmRSS:/ { s += $2 } END { print s }'; }
CLK_TCK="$(getconf CLK_TCK)"
RAW="$WORK/runs.jsonl"
: >"$RAW"

# One bench-load run against a target; appends a JSON line with the proxy's CPU per request.
# measure TARGET PHASE ROUND CONNECTIONS WARMUP [RATE LOAD_PCT]
measure() {
    local t=$1 phase=$2 round=$3 conns=$4 warm=$5 rate=${6:-} pct=${7:-}
    local pid=${PID_OF[$t]} out="$WORK/run.json"
    request_args "$t"
    local rate_args=()
    [ -n "$rate" ] && rate_args=(--rate "$rate")
    kill -0 ${pid%% *} 2>/dev/null || die "$t (pid $pid) is not running (see $WORK/$t.log)"
    local c0 u0 c1 u1 sampler=""
    # During the many-connection run, sample the proxy's resident set every 100 ms: its
    # maximum is the "RSS at 256 connections" (VmHWM covers the whole run).
    echo 0 >"$WORK/rss.max"
    if [ "$phase" = rss ]; then
        (
            max=0
            while kill -0 ${pid%% *} 2>/dev/null; do
                v=$(rss_kb "$pid")
                if [ "$v" -gt "$max" ]; then max=$v; echo "$max" >"$WORK/rss.max"; fi
                sleep 0.1
            done
        ) &
        sampler=$!
        PIDS+=("$sampler")
    fi
    c0=$(cpu_ticks "$pid")
    u0=$(cpu_ticks "$UPSTREAM_PID")
    "${PIN_LOAD[@]}" "$BIN/bench-load" "${REQ[@]}" -c "$conns" -d "$BENCH_SECONDS" \
        --warmup "$warm" --grace 1 "${rate_args[@]}" --label "$t" >"$out"
    c1=$(cpu_ticks "$pid")
    u1=$(cpu_ticks "$UPSTREAM_PID")
    if [ -n "$sampler" ]; then
        kill "$sampler" 2>/dev/null || true
        wait "$sampler" 2>/dev/null || true
    fi
    python3 - "$out" "$t" "$phase" "$round" "${pct:-null}" "$((c1 - c0))" "$((u1 - u0))" "$CLK_TCK" \
        "$(hwm_kb "$pid")" "$(rss_kb "$pid")" "$(cat "$WORK/rss.max")" >>"$RAW" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
t, phase, rnd, pct, ticks, uticks, hz, hwm, rss, rss_max = sys.argv[2:]
n = max(run["total_answers"], 1)
run.update(target=t, phase=phase, round=int(rnd), load_pct=json.loads(pct),
           proxy_cpu_us_per_req=round(int(ticks) * 1e6 / int(hz) / n, 2),
           upstream_cpu_us_per_req=round(int(uticks) * 1e6 / int(hz) / n, 2),
           proxy_vmhwm_kb=int(hwm), proxy_vmrss_kb=int(rss),
           proxy_rss_max_during_kb=int(rss_max) or None)
print(json.dumps(run))
PY
    python3 bench/report.py --line "$RAW" >&2
}

# ---------------------------------------------------------------- checks -----------------
# Every target must answer 200 before it is measured; a target that does not is skipped.
TARGETS=()
for t in $BENCH_TARGETS; do
    if [ -z "${PID_OF[$t]:-}" ]; then
        log "SKIP $t: not started"
        continue
    fi
    request_args "$t"
    if "$BIN/bench-load" "${REQ[@]}" -c 1 -d 0.3 --warmup 0 >"$WORK/probe.json" 2>&1 &&
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["requests"]>0 and r["non_2xx"]==0 and r["io_errors"]==0 else 1)' "$WORK/probe.json"; then
        TARGETS+=("$t")
    else
        log "SKIP $t: it does not answer 200: $(head -c 300 "$WORK/probe.json")"
    fi
done
[ ${#TARGETS[@]} -gt 0 ] || die "no target answers"
log "targets: ${TARGETS[*]}; rounds: $BENCH_ROUNDS × ${BENCH_SECONDS}s"
LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
STARTED=$(date +%s)

# ---------------------------------------------------------------- phase 1: 256 conns -----
# First, while every process is fresh: the resident set sampled during this run is the
# footprint at 256 connections, not what earlier overloaded runs left in the allocator.
log "phase 1: closed loop, $BENCH_RSS_CONNECTIONS connections (RSS), fresh processes"
for t in "${TARGETS[@]}"; do measure "$t" rss 1 "$BENCH_RSS_CONNECTIONS" "$BENCH_WARMUP"; done

# ---------------------------------------------------------------- phase 2: saturation ----
log "phase 2: saturation, closed loop, $BENCH_CONNECTIONS connections"
for r in $(seq 1 "$BENCH_ROUNDS"); do
    for t in "${TARGETS[@]}"; do measure "$t" saturation "$r" "$BENCH_CONNECTIONS" "$BENCH_WARMUP"; done
done

# Open-loop rates from nginx's median saturation (the direct upstream's if nginx is skipped).
BASE_TARGET=nginx
case " ${TARGETS[*]} " in *" nginx "*) ;; *) BASE_TARGET=${TARGETS[0]} ;; esac
BASE_RPS="$(python3 -c 'import json,sys,statistics as s
rs=[json.loads(l) for l in open(sys.argv[1])]
print(s.median([r["rps"] for r in rs if r["target"]==sys.argv[2] and r["phase"]=="saturation"]))' "$RAW" "$BASE_TARGET")"
log "open-loop rates: $BENCH_LOADS % of $BASE_TARGET's median saturation ($BASE_RPS req/s)"

# ---------------------------------------------------------------- phase 3: open loop -----
log "phase 3: open loop at fixed rates, $BENCH_CONNECTIONS connections"
OPEN_WARMUP="$(python3 -c "print($BENCH_WARMUP / 2)")"
for r in $(seq 1 "$BENCH_ROUNDS"); do
    for pct in $BENCH_LOADS; do
        rate="$(python3 -c "print(max(1, round($BASE_RPS * $pct / 100)))")"
        for t in "${TARGETS[@]}"; do measure "$t" open "$r" "$BENCH_CONNECTIONS" "$OPEN_WARMUP" "$rate" "$pct"; done
    done
done

# Shadow mode's own account of the copies (compared, dropped by the queue bound, …).
# GET on 127.0.0.1 through bash's /dev/tcp; the body follows the first empty line.
fetch_local() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1"
        printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
        cat <&3
    ) | tr -d '\r' | sed '1,/^$/d'
}
SHADOW_REPORT=null
if [ -n "${PORT_OF[shadow]:-}" ]; then
    SHADOW_REPORT="$(fetch_local "${ADMIN_PORT_OF[shadow]}" /_gateway/shadow || true)"
    python3 -c 'import json,sys; json.loads(sys.argv[1])' "$SHADOW_REPORT" 2>/dev/null || SHADOW_REPORT=null
fi

# Peak RSS of every proxy process over the whole run (VmHWM), the nginx master too.
PEAKS="{"
for t in "${TARGETS[@]}"; do PEAKS+="\"$t\": $(hwm_kb "${PID_OF[$t]}"),"; done
for t in nginx njs; do
    [ -n "${MASTER_OF[$t]:-}" ] && PEAKS+="\"${t}_master\": $(hwm_kb "${MASTER_OF[$t]}"),"
done
PEAKS="${PEAKS%,}}"

# ---------------------------------------------------------------- report -----------------
ELAPSED=$(($(date +%s) - STARTED))
mkdir -p "$(dirname "$BENCH_OUT")"
MACHINE="$(python3 - <<'PY'
import json, os, platform, subprocess
def sh(*a):
    try: return subprocess.run(a, capture_output=True, text=True).stdout.strip() or subprocess.run(a, capture_output=True, text=True).stderr.strip()
    except Exception: return ""
cpu = ""
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip(); break
print(json.dumps({"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
    "mem_mb": int(open("/proc/meminfo").readline().split()[1]) // 1024,
    "rustc": sh("rustc", "--version"), "nginx": sh("nginx", "-v")}))
PY
)"
python3 bench/report.py "$RAW" "$BENCH_OUT" <<EOF
{"date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "machine": $MACHINE,
 "settings": {"seconds": $BENCH_SECONDS, "warmup": $BENCH_WARMUP, "rounds": $BENCH_ROUNDS,
   "connections": $BENCH_CONNECTIONS, "rss_connections": $BENCH_RSS_CONNECTIONS,
   "loads_pct": [$(echo "$BENCH_LOADS" | tr ' ' ',')], "proxy_cpu": "$BENCH_PROXY_CPU", "load_cpu": "$BENCH_LOAD_CPU", "cores": $BENCH_CORES,
   "open_loop_base": "$BASE_TARGET", "open_loop_base_rps": $BASE_RPS},
 "loadavg_start": "$LOADAVG_START", "loadavg_end": "$(cut -d' ' -f1-3 /proc/loadavg)",
 "elapsed_s": $ELAPSED, "peak_rss_kb": $PEAKS, "shadow_report": $SHADOW_REPORT}
EOF
log "done in ${ELAPSED}s; results in $BENCH_OUT"
