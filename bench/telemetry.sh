#!/usr/bin/env bash
# What tracing and metrics cost on the hot path: GET /profile (a session
# validated from the cache) under wrk, on SQLite, in three set-ups:
#
#   off   development, trace store off (telemetry.keep_traces = 0) and
#         /metrics not served; spans are then disabled at the callsite
#   on    development as it ships: requests traced into the in-process
#         store (at most 200 new traces a second, the default cap),
#         /metrics served
#   all   as on, with the cap off: every request traced into the store
#   otlp  production (WARDEN_ENV=production): no store, every trace
#         exported over OTLP/HTTP at sampling 1.0 to a local receiver
#         (bench/otlp_sink.py, which counts what it receives)
#
# Each server logs at warn (as bench/run.sh), so logging is the same in all
# four. Prints rps, p50, p99 and peak RSS per set-up, and on/off
# (target >= 0.8).
#
# Environment: BENCH_DURATION (default 10s), BENCH_BIN (default: builds
# target/release/warden), BENCH_ROUNDS (default 2: the set-ups alternate,
# each figure is the best round, to damp noise on a shared machine).

set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="${BENCH_BIN:-$ROOT/target/release/warden}"
DURATION=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-2}
TARGET_RATIO=0.8

log() { printf '[telemetry-bench] %s\n' "$*" >&2; }
die() { printf '[telemetry-bench] ERROR: %s\n' "$*" >&2; exit 1; }

if ! command -v wrk >/dev/null; then
  log "wrk not found; installing it with apt-get"
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; } \
    || die "cannot install wrk"
fi
if [[ -z ${BENCH_BIN:-} ]]; then
  log "building the release binary"
  (cd "$ROOT" && cargo build --release -q -p warden)
fi

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n ${BENCH_KEEP:-} ]] || rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SINK_PORT=$(free_port)
python3 "$ROOT/bench/otlp_sink.py" "$SINK_PORT" >"$TMP/sink.log" 2>&1 &
PIDS+=($!)

# start MODE: starts a server for MODE; sets PID and BASE.
start() {
  local mode=$1 port dir
  port=$(free_port)
  dir="$TMP/$mode-$RANDOM"
  mkdir -p "$dir"
  local env=(RUST_LOG=warn)
  case $mode in
    off) env+=(WARDEN_TELEMETRY__KEEP_TRACES=0 WARDEN_TELEMETRY__METRICS_ON_API=false) ;;
    on) ;;
    all) env+=(WARDEN_TELEMETRY__MAX_TRACES_PER_SECOND=0) ;;
    otlp) env+=(WARDEN_ENV=production
                WARDEN_SECRET=bench-secret-0123456789abcdef0123456789abcdef
                WARDEN_MAIL__TRANSPORT=smtp WARDEN_MAIL__SMTP__HOST=127.0.0.1
                WARDEN_MAIL__SMTP__TLS=none
                WARDEN_RATE_LIMIT__ENABLED=false
                OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$SINK_PORT"
                OTEL_TRACES_SAMPLER_ARG=1.0) ;;
  esac
  (cd "$dir" && env "${env[@]}" "$BIN" serve --listen "127.0.0.1:$port" \
      --database-url "sqlite:$dir/warden.db" >"$dir/server.log" 2>&1) &
  PID=$!
  PIDS+=($PID)
  BASE="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  cat "$dir/server.log" >&2
  die "the $mode server did not start"
}

# The server process itself (the subshell's child).
server_pid() { pgrep -P "$PID" -f "warden serve" || echo "$PID"; }

token() {
  local email="bench-$RANDOM@example.com"
  curl -sf -X POST "$BASE/auth/signup" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"correct horse battery staple\",\"name\":\"Bench\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["session"]["token"])'
}

declare -A BEST_RPS BEST_P50 BEST_P99 PEAK
measure() {
  local mode=$1
  start "$mode"
  local t spid out="$TMP/wrk-$mode.txt"
  t=$(token) || die "sign-up failed on the $mode server"
  spid=$(server_pid)
  wrk --latency -t2 -c32 -d2s "$BASE/profile" -H "Authorization: Bearer $t" >/dev/null
  echo 5 >"/proc/$spid/clear_refs" 2>/dev/null || true
  wrk --latency -t2 -c32 -d"$DURATION" "$BASE/profile" -H "Authorization: Bearer $t" >"$out"
  local rps p50 p99 peak
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p50=$(awk '$1 == "50%" { print $2 }' "$out")
  p99=$(awk '$1 == "99%" { print $2 }' "$out")
  peak=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$spid/status")
  grep -q "Non-2xx" "$out" && die "$mode: non-2xx responses: $(cat "$out")"
  log "$mode: rps=$rps p50=$p50 p99=$p99 peak_rss=${peak}MiB"
  if [[ -z ${BEST_RPS[$mode]:-} ]] || awk -v a="$rps" -v b="${BEST_RPS[$mode]}" 'BEGIN { exit !(a > b) }'; then
    BEST_RPS[$mode]=$rps BEST_P50[$mode]=$p50 BEST_P99[$mode]=$p99
  fi
  PEAK[$mode]=$peak
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}

for round in $(seq "$ROUNDS"); do
  log "round $round of $ROUNDS"
  for mode in off on all otlp; do measure "$mode"; done
done

echo "telemetry cost on GET /profile (SQLite, best of $ROUNDS rounds of $DURATION, wrk -t2 -c32)"
for mode in off on all otlp; do
  printf '%-5s rps=%-10s p50=%-9s p99=%-9s peak_rss=%sMiB\n' "$mode" "${BEST_RPS[$mode]}" \
    "${BEST_P50[$mode]}" "${BEST_P99[$mode]}" "${PEAK[$mode]}"
done
ratio=$(awk -v a="${BEST_RPS[on]}" -v b="${BEST_RPS[off]}" 'BEGIN { printf "%.2f", a / b }')
ratio_all=$(awk -v a="${BEST_RPS[all]}" -v b="${BEST_RPS[off]}" 'BEGIN { printf "%.2f", a / b }')
ratio_otlp=$(awk -v a="${BEST_RPS[otlp]}" -v b="${BEST_RPS[off]}" 'BEGIN { printf "%.2f", a / b }')
verdict=$(awk -v r="$ratio" -v t="$TARGET_RATIO" 'BEGIN { print (r >= t) ? "MET" : "MISSED" }')
echo "on/off = $ratio (target >= $TARGET_RATIO) $verdict"
echo "all/off = $ratio_all (every request stored)"
echo "otlp/off = $ratio_otlp"
echo "otlp sink: $(tail -n 1 "$TMP/sink.log")"
