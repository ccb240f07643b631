#!/usr/bin/env bash
# schemathesis against the gateway's own OpenAPI documents (GET /_gateway/openapi/*.json),
# with the gateway running on its embedded v4 sandbox (no orchestrator, loopback only).
#
# Needs only python3 and the Rust toolchain: schemathesis (pinned) goes into a venv under
# target/. Bounded: --max-examples per operation, a fixed seed, one worker, a timeout per run.
# Exits non-zero when any check fails on either document.
#
#   bench/schemathesis.sh                      # both documents
#   SCHEMATHESIS_MAX_EXAMPLES=200 SCHEMATHESIS_SEED=1 bench/schemathesis.sh
#
# Checks (schemathesis 4): status_code_conformance, content_type_conformance,
# response_schema_conformance, negative_data_rejection (User API), missing_required_header
# (action API), plus three of ours (hooks written to target/schemathesis/hooks.py):
#   gateway_never_fails  no caught panic (Gateway_E500_01) and no 5xx of the gateway's own;
#                        the one 5xx allowed is v4's documented unknown-user answer
#                        (500 UsersOrchestrator_E500_01, ErrorSource UsersOrchestrator);
#   missing_header_is_named  (User API) a missing Authorization is 401 Gateway_E401_01 with
#                        `WWW-Authenticate: Bearer` (legacy clients renew their token on it);
#                        any other missing mandatory header is 400 Gateway_E400_01 naming it;
#   invalid_is_never_ok  (action API) the legacy API answers validation failures with HTTP 200
#                        and status "validationfailed", so schemathesis' negative_data_rejection
#                        (which wants a 4xx) does not apply; this asserts instead that invalid
#                        input is never answered "OK".
# not_a_server_error runs for the action API only: on the User API an unknown customer id is
# v4's documented 500 E500_01, passed through as the spec requires.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-50}"
SEED="${SCHEMATHESIS_SEED:-20240501}"
RUN_TIMEOUT="${SCHEMATHESIS_TIMEOUT:-300}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
WORK="$TARGET_DIR/schemathesis"
VENV="$TARGET_DIR/schemathesis-venv"
mkdir -p "$WORK"

echo "== schemathesis $VERSION (venv $VENV)"
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

echo "== cargo build (debug)"
cargo build --quiet --bin legacy-gateway
BIN="$TARGET_DIR/debug/legacy-gateway"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
# The OpenAPI documents are served on the admin listener; the calls go to the client one.
ADMIN="http://127.0.0.1:$ADMIN_PORT"
# No LEGACY_GATEWAY_* from the caller's environment: the embedded sandbox, defaults only.
unset_env=()
while IFS= read -r name; do unset_env+=(-u "$name"); done < <(env | sed -n 's/^\(LEGACY_GATEWAY_[A-Za-z0-9_]*\)=.*/\1/p')
env "${unset_env[@]}" RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
cleanup() {
  kill "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

python3 - "$BASE" <<'PY'
import sys, time, urllib.request
base = sys.argv[1]
deadline = time.time() + 30
while True:
    try:
        with urllib.request.urlopen(base + "/_gateway/healthz", timeout=1) as r:
            if r.status == 200:
                break
    except Exception:
        pass
    if time.time() > deadline:
        sys.exit("the gateway did not answer /_gateway/healthz within 30 s")
    time.sleep(0.1)
PY
echo "== gateway on $BASE (embedded sandbox), log in $WORK/gateway.log"

cat >"$WORK/hooks.py" <<'PY'
"""Checks of legacy-gateway's own contract, beyond what the OpenAPI documents can say."""
import json

import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import REQUEST_SHAPE_PROBES, CoveragePhaseData, CoverageScenario


def _json(response):
    try:
        return json.loads(response.content)
    except Exception:
        return None


@schemathesis.check
def gateway_never_fails(ctx, response, case):
    """No caught panic; no 5xx but v4's documented unknown-user answer."""
    text = response.content.decode("utf-8", "replace")
    if "Gateway_E500_01" in text:
        raise AssertionError("a request handler panicked (Gateway_E500_01)")
    if response.status_code < 500:
        return None
    if case.method.upper() == "HEAD" and response.status_code == 500:
        # No body to tell v4's unknown-user answer from a gateway failure; the GET of the
        # same read is checked with its body, and a caught panic never answers HEAD alone.
        return None
    body = _json(response)
    errors = body.get("Errors") if isinstance(body, dict) else None
    if (
        response.status_code == 500
        and isinstance(errors, list)
        and errors
        and all(
            e.get("ErrorSource") == "UsersOrchestrator"
            and e.get("Code") == "UsersOrchestrator_E500_01"
            for e in errors
        )
    ):
        return None
    raise AssertionError(f"gateway-side {response.status_code}: {text[:300]}")


@schemathesis.check
def missing_header_is_named(ctx, response, case):
    """User API: a missing Authorization is 401 Gateway_E401_01 with WWW-Authenticate: Bearer;
    any other missing mandatory header is 400 Gateway_E400_01 naming it."""
    data = getattr(getattr(getattr(case, "meta", None), "phase", None), "data", None)
    if (
        not isinstance(data, CoveragePhaseData)
        or data.scenario != CoverageScenario.MISSING_PARAMETER
        or data.parameter_location != ParameterLocation.HEADER
    ):
        return None
    body = _json(response)
    errors = body.get("Errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else {}
    # HEAD answers carry no body to name the code.
    head = case.method.upper() == "HEAD"
    if data.parameter.lower() == "authorization":
        challenge = [
            v if isinstance(v, str) else ", ".join(v)
            for k, v in response.headers.items()
            if k.lower() == "www-authenticate"
        ]
        if (
            response.status_code != 401
            or (not head and first.get("Code") != "Gateway_E401_01")
            or challenge != ["Bearer"]
        ):
            raise AssertionError(
                f"missing Authorization: expected 401 Gateway_E401_01 with WWW-Authenticate: "
                f"Bearer, got {response.status_code} {response.content[:300]!r}"
            )
        return None
    if head:
        if response.status_code != 400:
            raise AssertionError(f"missing {data.parameter} on HEAD: {response.status_code}")
        return None
    if (
        response.status_code != 400
        or first.get("Code") != "Gateway_E400_01"
        or data.parameter.lower() not in str(first.get("Message", "")).lower()
    ):
        raise AssertionError(
            f"missing {data.parameter}: expected 400 Gateway_E400_01 naming it, got "
            f"{response.status_code} {response.content[:300]!r}"
        )
    return None


@schemathesis.check
def invalid_is_never_ok(ctx, response, case):
    """Invalid input to the action API is never answered status "OK"."""
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_negative:
        return None
    # Content-type probes: the gateway reads any body as JSON whatever its Content-Type
    # (lenient with old clients); for these schemathesis itself only counts server errors.
    if getattr(meta.phase.data, "scenario", None) in REQUEST_SHAPE_PROBES:
        return None
    body = _json(response)
    if response.status_code == 200 and isinstance(body, dict) and body.get("status") == "OK":
        raise AssertionError(f"invalid input answered OK: {body}")
    return None
PY

# An unsigned JWT for the seeded sandbox user 1001 (the gateway reads `sub`, v4 is the authority).
JWT="$(python3 -c 'import base64, json
b = lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()
print(b({"alg": "HS256", "typ": "JWT"}) + "." + b({"sub": "1001"}) + ".c2FuZGJveA")')"

COMMON=(
  --max-examples "$MAX_EXAMPLES"
  --seed "$SEED"
  --workers 1
  --phases examples,coverage,fuzzing
  --request-timeout 10
  --header "Authorization: Bearer $JWT"
  --suppress-health-check all
  --no-color
)

status=0
run() {
  local name="$1" checks="$2"
  echo "== schemathesis: $name ($ADMIN/_gateway/openapi/$name.json)"
  if ! SCHEMATHESIS_HOOKS="$WORK/hooks.py" timeout "$RUN_TIMEOUT" "$VENV/bin/schemathesis" run \
      "$ADMIN/_gateway/openapi/$name.json" --url "$BASE" --checks "$checks" "${COMMON[@]}"; then
    echo "!! schemathesis found failures in $name (or timed out after ${RUN_TIMEOUT}s)"
    status=1
  fi
}
run user-api status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection,missing_header_is_named,gateway_never_fails
run registry not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,missing_required_header,gateway_never_fails,invalid_is_never_ok

if ! kill -0 "$GW_PID" 2>/dev/null; then
  echo "!! the gateway exited during the run; log:"
  tail -50 "$WORK/gateway.log"
  status=1
fi
exit "$status"
