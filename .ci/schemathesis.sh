#!/usr/bin/env bash
# API fuzzing: Schemathesis against a live warden, checked against the
# server's own /openapi.json (the tutorial API and the BetterAuth API).
#
#   bash .ci/schemathesis.sh [extra `st run` options...]
#
# Environment:
#   WARDEN_BIN         warden binary to test. Unset: `cargo build -p warden`
#                      (a no-op when up to date) and use target/debug/warden.
#   ST_MAX_EXAMPLES    test cases per operation and phase (default 120: since
#                      the request schemas carry patterns and formats, 300 made
#                      the main pass's fuzzing phase 540 s on a 2-core machine,
#                      and 200 kept the whole of CI above its 25 minutes once
#                      the MySQL suite joined it)
#   ST_SEED            Hypothesis seed (default fixed, so runs are reproducible)
#   ST_CHECKS          checks to run (default: see CHECKS below)
#   ST_REPORT_DIR      JUnit/NDJSON reports and the warden log
#                      (default target/schemathesis)
#   ST_TIMEOUT         hard cap on each Schemathesis pass, seconds (default 600;
#                      the main pass took 610 s at 300 examples)
#   ST_PASSES          the passes to run (default: main session-enders
#                      credentials positive)
#
# Exits non-zero when Schemathesis reports a failure, or cannot run.
set -euo pipefail
EXTRA_ARGS=("$@")

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-120}"
SEED="${ST_SEED:-20261127}"
REPORT_DIR="${ST_REPORT_DIR:-$ROOT/target/schemathesis}"
ST_TIMEOUT="${ST_TIMEOUT:-600}"
# On every response: no 5xx; status code, content type, headers and body as
# documented. Beyond that: schema-invalid input is refused with a 4xx, a
# missing required header is refused, undeclared methods get 405 with `Allow`,
# protected operations refuse a missing or invalid token, and a deleted
# resource stays gone. positive_data_acceptance (schema-valid input must not
# get a 400/422) has a pass of its own on the tutorial API (see "positive"
# below); BetterAuth's API stays out of it, as its own statuses fail it for
# good (400 INVALID_PASSWORD, 422 USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL).
CHECKS="${ST_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,missing_required_header,unsupported_method,allow_header_conformance,ignored_auth,use_after_free,ensure_resource_availability}"

log() { printf '== %s\n' "$*"; }

if ! command -v curl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq curl >/dev/null
fi

# --- Schemathesis, pinned, in its own virtualenv outside the work tree -------
ST_VENV="${ST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/warden-ci/schemathesis-$SCHEMATHESIS_VERSION}"
ST="$ST_VENV/bin/st"
if ! "$ST" --version 2>/dev/null | grep -qx "st, version $SCHEMATHESIS_VERSION"; then
  log "installing schemathesis==$SCHEMATHESIS_VERSION into $ST_VENV"
  if ! command -v python3 >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  rm -rf "$ST_VENV"
  if ! python3 -m venv "$ST_VENV" 2>/dev/null; then
    rm -rf "$ST_VENV"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$ST_VENV"
  fi
  "$ST_VENV/bin/python" -m pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
"$ST" --version

# --- warden ------------------------------------------------------------------
if [ -z "${WARDEN_BIN:-}" ]; then
  log "cargo build -p warden"
  (cd "$ROOT" && cargo build -p warden)
  WARDEN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/warden"
fi
case "$WARDEN_BIN" in /*) ;; *) WARDEN_BIN="$ROOT/$WARDEN_BIN" ;; esac
[ -x "$WARDEN_BIN" ] || { echo "warden binary not found: $WARDEN_BIN" >&2; exit 2; }
mkdir -p "$REPORT_DIR"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/warden-schemathesis.XXXXXX")"
WARDEN_PID=""
ST_PID=""
cleanup() {
  local rc=$?
  if [ -n "$ST_PID" ]; then
    kill "$ST_PID" 2>/dev/null || true
    wait "$ST_PID" 2>/dev/null || true
  fi
  if [ -n "$WARDEN_PID" ] && kill -0 "$WARDEN_PID" 2>/dev/null; then
    kill "$WARDEN_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$WARDEN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$WARDEN_PID" 2>/dev/null || true
    wait "$WARDEN_PID" 2>/dev/null || true
  fi
  if [ -f "$WORK/warden.log" ]; then
    cp "$WORK/warden.log" "$REPORT_DIR/warden.log" 2>/dev/null || true
    local problems
    problems="$(grep -E '"level":"(WARN|ERROR)"' "$WORK/warden.log" | tail -n 30 || true)"
    if [ "$rc" != 0 ] && [ -n "$problems" ]; then
      printf -- "-- warden's warnings and errors (full log: %s):\n%s\n" "$REPORT_DIR/warden.log" "$problems" >&2
    fi
  fi
  cd / && rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PY="$ST_VENV/bin/python"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
log "starting $WARDEN_BIN on $BASE (in $WORK)"
# Warden refuses unknown WARDEN_* variables (WARDEN_BIN itself, or .ci/run's
# WARDEN_TEST_DATABASE_URL, would stop it) and DATABASE_URL would point it at
# another database: it gets only the variables set here. Cheap argon2, so that
# sign-ups and sign-ins do not dominate the run. Deleting users stays off (the
# default), so POST /api/auth/delete-user answers 404. The failed-sign-in
# lockout is off: Schemathesis tries many wrong passwords for the one user it
# signs in as, and would lock it out (the lockout has its own tests). The
# common-password list is off: a JSON Schema cannot state "not one of these
# 10,000 passwords" short of listing them, so a generated "00000000" would be
# schema-valid and refused, failing positive_data_acceptance on the server's
# policy rather than on the document (the list has its own tests).
bin="$WARDEN_BIN"
(
  cd "$WORK"
  for v in $(compgen -e); do
    case "$v" in WARDEN_*|DATABASE_URL|RUST_LOG) unset "$v" ;; esac
  done
  exec env WARDEN_LISTEN="127.0.0.1:$PORT" WARDEN_BASE_URL="$BASE" \
    WARDEN_PASSWORD__ARGON2__MEMORY_KIB=1024 WARDEN_PASSWORD__ARGON2__ITERATIONS=1 \
    WARDEN_LOCKOUT__MAX_FAILURES=0 WARDEN_PASSWORD__REJECT_COMMON=false \
    WARDEN_LOG__FORMAT=json \
    "$bin" serve
) >"$WORK/warden.log" 2>&1 &
WARDEN_PID=$!

for i in $(seq 1 100); do
  if curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null; then break; fi
  if ! kill -0 "$WARDEN_PID" 2>/dev/null; then
    echo "warden exited during start-up:" >&2; cat "$WORK/warden.log" >&2; exit 1
  fi
  if [ "$i" = 100 ]; then echo "warden did not answer /healthz within 20 s" >&2; exit 1; fi
  sleep 0.2
done

# --- the user Schemathesis acts as -------------------------------------------
export ST_FUZZ_EMAIL="schemathesis@example.com"
export ST_FUZZ_PASSWORD="schemathesis-password-1"
log "signing up $ST_FUZZ_EMAIL"
SIGNUP="$(curl -fsS -X POST "$BASE/auth/signup" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$ST_FUZZ_EMAIL\",\"password\":\"$ST_FUZZ_PASSWORD\",\"name\":\"Schemathesis\"}")"
"$PY" -c 'import json, sys; assert json.loads(sys.argv[1])["session"]["token"]' "$SIGNUP"

# Schemathesis signs in through POST /auth/signin itself and sends the token
# as `Authorization: Bearer` wherever bearerAuth is declared; on a 401 it signs
# in again and replays the request (retry_on).
cat >"$WORK/schemathesis.toml" <<'TOML'
[auth.dynamic.openapi.bearerAuth]
path = "/auth/signin"
payload = { email = "${ST_FUZZ_EMAIL}", password = "${ST_FUZZ_PASSWORD}" }
extract_selector = "/session/token"
retry_on = [401]

# positive_data_acceptance: what a schema-valid request may be answered
# besides Schemathesis's defaults (2xx, 3xx, 401, 403, 404, 409, 429). A
# single-use token, code or confirming password that is well-formed but
# wrong is refused with 400 invalid_argument, as BetterAuth's INVALID_TOKEN
# and INVALID_PASSWORD: which tokens exist and what the password is, is
# the server's state, not the request's shape; so is "this is the last way
# to sign in" for unlink-account, and whether a two-factor or passkey
# challenge was started (it may come in the body or in a cookie, so the
# schema cannot require it). Only these operations get the 400.
[[operations]]
include-operation-id = ["resetPassword", "verifyEmail", "twoFactorConfirm", "twoFactorVerifyTotp", "twoFactorVerifyBackupCode", "twoFactorDisable", "twoFactorEnable", "twoFactorGetTotpUri", "twoFactorGenerateBackupCodes", "twoFactorEnableOtp", "twoFactorSendOtp", "twoFactorVerifyOtp", "passkeyRegisterVerify", "passkeySigninVerify", "socialExchange", "unlinkAccount"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]
TOML

# Operations that can end the caller's own session (or account) get a pass of
# their own, without the stateful phase: Schemathesis signs in again after a
# 401 in the examples, coverage and fuzzing phases, but not inside stateful
# scenarios, where a DELETE /sessions/{id} of the current session (reached by
# the inferred GET /sessions -> DELETE /sessions/{id} link) would leave every
# later request with a dead token.
SESSION_ENDERS=(signOut baSignOut baRevokeSessions baRevokeOtherSessions baRevokeSession revokeSession baDeleteUser)
EXCLUDE_ENDERS=()
INCLUDE_ENDERS=()
for id in "${SESSION_ENDERS[@]}"; do
  EXCLUDE_ENDERS+=(--exclude-operation-id "$id")
  INCLUDE_ENDERS+=(--include-operation-id "$id")
done

COMMON=(
  --url "$BASE"                                # the schema's `servers` says localhost:4000
  --checks "$CHECKS"
  --max-examples "$MAX_EXAMPLES"
  --seed "$SEED"
  --generation-database none                   # nothing carried over between runs
  --generation-with-security-parameters false  # send the real token, not generated ones
  --workers 1                                  # one request at a time, same order every run
  --request-timeout 10
  --continue-on-failure                        # every distinct failure, not just the first
  --output-sanitize false                      # throwaway credentials; exact reproducers
  --no-color
)

cd "$WORK"
passed=0
failed=0
run_pass() {
  local name="$1"
  shift
  local args=(run "$BASE/openapi.json" "${COMMON[@]}"
    --report "junit,ndjson"
    --report-junit-path "$REPORT_DIR/$name.junit.xml"
    --report-ndjson-path "$REPORT_DIR/$name.ndjson"
    "$@")
  log "pass '$name': st --config-file schemathesis.toml ${args[*]}"
  local start rc
  start=$(date +%s)
  # In the background, so that a signal to this script is handled at once.
  timeout --kill-after=10 "$ST_TIMEOUT" "$ST" --config-file "$WORK/schemathesis.toml" "${args[@]}" &
  ST_PID=$!
  set +e
  wait "$ST_PID"
  rc=$?
  set -e
  ST_PID=""
  log "pass '$name' finished in $(($(date +%s) - start)) s with exit code $rc"
  case "$rc" in
    0) passed=$((passed + 1)) ;;
    124 | 137) echo "pass '$name' exceeded ${ST_TIMEOUT} s" >&2; failed=$((failed + 1)) ;;
    *) failed=$((failed + 1)) ;;
  esac
  if ! kill -0 "$WARDEN_PID" 2>/dev/null; then echo "warden died during pass '$name'" >&2; exit 1; fi
}

PASSES="${ST_PASSES:-main session-enders credentials positive}"
want() { case " $PASSES " in *" $1 "*) return 0 ;; esac; return 1; }

# 1. Everything but the session enders, all phases (stateful included).
want main && run_pass main "${EXCLUDE_ENDERS[@]}" ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}
# 2. The session enders (sign-out, revoke-*, DELETE /sessions/{id}, delete-user).
want session-enders && run_pass session-enders --phases examples,coverage,fuzzing "${INCLUDE_ENDERS[@]}" \
  ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}
# 3. Every operation with generated credentials as well: random or malformed
#    `Authorization` headers and `warden.session_token` cookies (a cookie also
#    brings in the origin check). Fewer examples: most of these requests stop
#    at the authentication layer.
want credentials && run_pass credentials --phases coverage,fuzzing --generation-with-security-parameters true \
  --max-examples "$(( (MAX_EXAMPLES + 2) / 3 ))" ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}
# 4. The tutorial API's request schemas state the handlers' rules: every
#    schema-valid request is accepted (positive data only; no stateful phase,
#    whose chained requests are not all schema-valid on their own). The
#    session enders are in it too. BetterAuth's API is not (see CHECKS), nor
#    the admin API: its role names must be roles the configuration defines
#    and several of its answers depend on state (not impersonating, the
#    caller's own account), which the document does not state yet.
want positive && run_pass positive --phases examples,coverage,fuzzing \
  --checks not_a_server_error,positive_data_acceptance \
  --mode positive --exclude-tag betterauth --exclude-tag admin \
  --max-examples "$(( (MAX_EXAMPLES + 2) / 3 ))" ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"}
log "reports in $REPORT_DIR"
echo "schemathesis: $passed passed, $failed failed"
[ "$failed" = 0 ]
