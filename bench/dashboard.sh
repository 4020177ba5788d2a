#!/usr/bin/env bash
# What the dashboard costs the API when nobody looks at it: GET /profile (a
# session validated from the cache) under wrk, on SQLite, with the
# development dashboard on (as `warden serve` ships) and off
# (dashboard.enabled = false). Everything else is the same: development
# defaults, traces kept, logging at warn.
#
# Prints rps, p50, p99 and peak RSS per set-up, and on/off (target: no
# measurable difference, i.e. within the round-to-round noise).
#
# Environment: BENCH_DURATION (default 10s), BENCH_BIN (default: builds
# target/release/warden), BENCH_ROUNDS (default 3; the set-ups alternate,
# each figure is the best round).

set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="${BENCH_BIN:-$ROOT/target/release/warden}"
DURATION=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-3}

log() { printf '[dashboard-bench] %s\n' "$*" >&2; }
die() { printf '[dashboard-bench] ERROR: %s\n' "$*" >&2; exit 1; }

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
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() {
  local mode=$1 port dport dir
  port=$(free_port); dport=$(free_port)
  dir="$TMP/$mode-$RANDOM"; mkdir -p "$dir"
  local env=(RUST_LOG=warn)
  case $mode in
    on) env+=(WARDEN_DASHBOARD__LISTEN="127.0.0.1:$dport") ;;
    off) env+=(WARDEN_DASHBOARD__ENABLED=false) ;;
  esac
  # exec: $! is the server itself, whose peak RSS is measured.
  (cd "$dir" && exec env "${env[@]}" "$BIN" serve --listen "127.0.0.1:$port" \
      --database-url "sqlite:$dir/warden.db" >"$dir/server.log" 2>&1) &
  PID=$!
  PIDS+=($PID)
  BASE="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -sf "$BASE/healthz" >/dev/null || { cat "$dir/server.log" >&2; die "the $mode server did not start"; }
  if [[ $mode == on ]]; then
    curl -sf "http://127.0.0.1:$dport/api/me" >/dev/null || die "the dashboard is not up"
  fi
}

token() {
  curl -sf -X POST "$BASE/auth/signup" -H 'content-type: application/json' \
    -d "{\"email\":\"bench-$RANDOM@example.com\",\"password\":\"correct horse battery staple\",\"name\":\"Bench\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["session"]["token"])'
}

declare -A BEST_RPS BEST_P50 BEST_P99 PEAK LAST
RATIOS=()
measure() {
  local mode=$1 t spid out="$TMP/wrk-$1.txt"
  start "$mode"
  t=$(token) || die "sign-up failed on the $mode server"
  spid=$PID
  wrk -t2 -c32 -d2s "$BASE/profile" -H "Authorization: Bearer $t" >/dev/null
  wrk --latency -t2 -c32 -d"$DURATION" "$BASE/profile" -H "Authorization: Bearer $t" >"$out"
  grep -q "Non-2xx" "$out" && die "$mode: non-2xx responses: $(cat "$out")"
  local rps p50 p99 peak
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p50=$(awk '$1 == "50%" { print $2 }' "$out")
  p99=$(awk '$1 == "99%" { print $2 }' "$out")
  peak=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$spid/status")
  log "$mode: rps=$rps p50=$p50 p99=$p99 peak_rss=${peak}MiB"
  if [[ -z ${BEST_RPS[$mode]:-} ]] || awk -v a="$rps" -v b="${BEST_RPS[$mode]}" 'BEGIN { exit !(a > b) }'; then
    BEST_RPS[$mode]=$rps BEST_P50[$mode]=$p50 BEST_P99[$mode]=$p99
  fi
  PEAK[$mode]=$peak
  LAST[$mode]=$rps
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}

for r in $(seq "$ROUNDS"); do
  if (( r % 2 )); then measure off; measure on; else measure on; measure off; fi
  RATIOS+=("$(awk -v a="${LAST[on]}" -v b="${LAST[off]}" 'BEGIN { printf "%.3f", a / b }')")
done

printf '\n%-5s %10s %9s %9s %9s\n' setup rps p50 p99 peak_MiB
for m in off on; do
  printf '%-5s %10s %9s %9s %9s\n' "$m" "${BEST_RPS[$m]}" "${BEST_P50[$m]}" "${BEST_P99[$m]}" "${PEAK[$m]}"
done
awk -v a="${BEST_RPS[on]}" -v b="${BEST_RPS[off]}" 'BEGIN { printf "\non/off (best rounds) = %.3f\n", a / b }'
# Each round runs both set-ups back to back, so its ratio shares the
# machine's state of the moment; the median of those is the steadier figure.
printf 'on/off per round: %s\n' "${RATIOS[*]}"
printf '%s\n' "${RATIOS[@]}" | sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "on/off median of rounds = %.3f\n", m }'
