#!/usr/bin/env bash
# Warden load benchmark: builds the release binary, then for each backend
# (SQLite, PostgreSQL) starts a fresh server and measures GET /healthz,
# GET /profile and POST /auth/signin with wrk, the server's peak RSS during
# each load, its RSS 3 s after the sign-in load, and its cold-start time on an
# existing database (bench/coldstart.py). See bench/README.md.
#
# Environment:
#   BENCH_DURATION   wrk duration of each load (default 10s)
#   BENCH_COLDSTART_RUNS  measured cold starts per backend (default 7)
#   BENCH_BACKENDS   backends to run (default "sqlite postgres")
#   BENCH_KEEP=1     keep the temp dirs (server logs, raw wrk output)
#   BENCH_BIN        measure this binary instead of building target/release/warden
#                    (to compare builds side by side)
#   BENCH_PG_HOST / BENCH_PG_PORT / BENCH_PG_USER / BENCH_PG_ADMIN_DB
#                    PostgreSQL server used for the postgres backend
#                    (default 127.0.0.1 / 5432 / postgres / test)
# Any other variable (e.g. WARDEN_SESSION__CACHE_TTL=5s) is inherited by the
# server unchanged. The server always runs with RUST_LOG=warn.
#
# Exit status: 0 when every run completed (targets missed or not), non-zero
# when the build, the server start or a setup request fails.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR="$ROOT/bench"
BIN="${BENCH_BIN:-$ROOT/target/release/warden}"

DURATION=${BENCH_DURATION:-10s}
COLDSTART_RUNS=${BENCH_COLDSTART_RUNS:-7}
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
PG_HOST=${BENCH_PG_HOST:-127.0.0.1}
PG_PORT=${BENCH_PG_PORT:-5432}
PG_USER=${BENCH_PG_USER:-postgres}
PG_ADMIN_DB=${BENCH_PG_ADMIN_DB:-test}

READY_TIMEOUT=30     # seconds to wait for /healthz after starting the server
STOP_TIMEOUT=10      # seconds to wait for a graceful shutdown before SIGKILL
TARGET_PROFILE_RATIO=0.5
TARGET_SIGNIN_RATIO=0.90
TARGET_SIGNIN_PEAK_MIB=64      # peak RSS during the signin load
TARGET_SETTLED_RSS_MIB=32      # RSS 3 s after the signin load
TARGET_PROFILE_PEAK_MIB=40     # peak RSS during the profile load
TARGET_COLDSTART_MS=10         # median cold start, SQLite only
SETTLE_SECONDS=3               # wait after the signin load before reading VmRSS

log() { printf '[bench] %s\n' "$*" >&2; }
warn() { printf '[bench] WARNING: %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup ---

SERVER_PID=""
PG_DB=""
TMP_DIRS=()

stop_server() {
  local pid=$SERVER_PID
  [[ -n $pid ]] || return 0
  SERVER_PID=""
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      warn "server (pid $pid) did not stop within ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

psql_admin() {
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_ADMIN_DB" \
    -v ON_ERROR_STOP=1 -X -q -t -A "$@"
}

drop_pg_db() {
  local db=$PG_DB
  [[ -n $db ]] || return 0
  PG_DB=""
  psql_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 \
    || warn "could not drop PostgreSQL database $db"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_server
  drop_pg_db
  local d
  for d in "${TMP_DIRS[@]+"${TMP_DIRS[@]}"}"; do
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
      log "kept $d"
    else
      rm -rf -- "$d"
    fi
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# new_tmp_dir: creates a temp dir (removed on exit) and stores it in NEW_TMP.
# (Not called as $(new_tmp_dir): the registration must happen in this shell.)
NEW_TMP=""
new_tmp_dir() {
  NEW_TMP=$(mktemp -d "${TMPDIR:-/tmp}/warden-bench.XXXXXX") || die "mktemp failed"
  TMP_DIRS+=("$NEW_TMP")
}

# ---------------------------------------------------------------- helpers ---

free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# json_get FILE KEY.PATH: prints a value from a JSON file, fails if absent.
json_get() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    value = value[key]
print(value)
EOF
}

# Float helpers (awk does the arithmetic).
fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.2f", a / b }'; }
fge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "nan" && a + 0 >= b + 0) }'; }
fle() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "nan" && a != "n/a" && a + 0 <= b + 0) }'; }
verdict() { if fge "$1" "$2"; then echo PASS; else echo MISS; fi; }
verdict_le() { if fle "$1" "$2"; then echo PASS; else echo MISS; fi; }

# to_ms VALUE: converts a wrk duration (e.g. 350.00us, 1.20ms, 2.01s, 1.00m) to ms.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v == "") { print "n/a"; exit }
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000
    else if (u == "ms") n = n
    else if (u == "s") n *= 1000
    else if (u == "m") n *= 60000
    else if (u == "h") n *= 3600000
    else { print "n/a"; exit }
    printf "%.2f", n
  }'
}

# cpu_busy_pct: share of all CPUs busy over one second, from /proc/stat.
cpu_busy_pct() {
  local a b
  a=$(head -1 /proc/stat)
  sleep 1
  b=$(head -1 /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    n = split(a, x, " "); split(b, y, " ")
    for (i = 2; i <= n; i++) { d = y[i] - x[i]; total += d; if (i == 5 || i == 6) idle += d }
    printf "%.0f", (total > 0 ? 100 * (total - idle) / total : 0)
  }'
}

# status_mib FIELD: a kB field of /proc/$SERVER_PID/status (VmHWM, VmRSS) in MiB.
status_mib() {
  local kb
  kb=$(awk -v f="$1:" '$1 == f { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || true)
  if [[ -n $kb ]]; then
    awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }'
  else
    echo "n/a"
  fi
}

# reset_peak_rss: resets the server's VmHWM to its current RSS (writing 5 to
# clear_refs), so that the VmHWM read after a load is the peak of that load.
# The first failure sets PEAK_PER_LOAD=0 and warns once; from then on VmHWM
# is the peak since the process started.
PEAK_PER_LOAD=1
reset_peak_rss() {
  [[ $PEAK_PER_LOAD == 1 ]] || return 0
  if ! { echo 5 >"/proc/$SERVER_PID/clear_refs"; } 2>/dev/null; then
    PEAK_PER_LOAD=0
    warn "cannot write /proc/$SERVER_PID/clear_refs (needs Linux >= 4.0 and permission): peak RSS figures are the whole-process peak since start, not per load"
  fi
}

# -------------------------------------------------------------- load runs ---

# Results of the last run_wrk call (R_PEAK: the server's VmHWM after the
# load, in MiB; the load's own peak unless PEAK_PER_LOAD=0).
R_RPS="" R_P50="" R_P99="" R_NOTE="" R_PEAK=""

# run_wrk NAME OUTFILE CONNECTIONS URL [wrk options...]
run_wrk() {
  local name=$1 out=$2 conns=$3 url=$4
  shift 4
  reset_peak_rss
  log "  $name: wrk -t2 -c$conns -d$DURATION $url"
  if ! wrk --latency -t2 -c"$conns" -d"$DURATION" "$@" "$url" >"$out" 2>&1; then
    cat "$out" >&2
    die "wrk failed for $name"
  fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    cat "$out" >&2
    tail -n 40 "$SERVER_LOG" | sed 's/^/  server: /' >&2
    die "the server died during the $name load (wrk output and server log tail above; BENCH_KEEP=1 keeps the files)"
  fi
  R_PEAK=$(status_mib VmHWM)

  R_RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  R_P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
  R_P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  [[ -n $R_RPS ]] || R_RPS="n/a"

  local total non2xx sock status_line
  total=$(awk '/ requests in / { print $1 }' "$out")
  non2xx=$(awk -F: '/Non-2xx or 3xx responses/ { gsub(/ /, "", $2); print $2 }' "$out")
  non2xx=${non2xx:-0}
  # "Socket errors: connect 0, read 0, write 0, timeout 0"
  sock=$(awk '/Socket errors:/ { gsub(/,/, ""); print "connect=" $4, "read=" $6, "write=" $8, "timeout=" $10 }' "$out")
  R_NOTE=""
  if [[ $non2xx != 0 ]]; then
    R_NOTE="$non2xx of ${total:-?} responses were not 2xx/3xx"
  fi
  status_line=$(awk '/^bench_status / { print }' "$out")
  if [[ -n $status_line ]] && ! grep -q ' non200=0 ' <<<"$status_line"; then
    R_NOTE="${R_NOTE:+$R_NOTE; }statuses: ${status_line#bench_status }"
  fi
  if [[ -n $sock ]]; then
    R_NOTE="${R_NOTE:+$R_NOTE; }socket errors: $sock"
  fi
  if [[ -n $R_NOTE ]]; then
    warn "$name: $R_NOTE"
  fi
}

# ------------------------------------------------------------- per backend ---

SUMMARY=()
SERVER_LOG=""

bench_backend() {
  local backend=$1 n=$2
  local tmp url port
  new_tmp_dir
  tmp=$NEW_TMP
  case $backend in
    sqlite)
      url="sqlite:$tmp/warden.db"
      ;;
    postgres)
      if ! psql_admin -c 'select 1' >/dev/null 2>&1; then
        log "skipping postgres: cannot connect with psql -h $PG_HOST -p $PG_PORT -U $PG_USER -d $PG_ADMIN_DB"
        SUMMARY+=("== postgres ==" "skipped (PostgreSQL not reachable)")
        return 0
      fi
      PG_DB="warden_bench_$$_${n}_$RANDOM"
      psql_admin -c "CREATE DATABASE \"$PG_DB\"" >/dev/null \
        || { PG_DB=""; die "cannot create PostgreSQL database"; }
      url="postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB"
      ;;
    *)
      die "unknown backend '$backend' (expected sqlite or postgres)"
      ;;
  esac

  # Cold start: the first start creates the secrets file and the database
  # and migrates it; then COLDSTART_RUNS timed starts on that database, in the
  # same dir. The load server below is one more start on the same database.
  local cs_out="$tmp/coldstart.txt" cs_log="$tmp/coldstart.log"
  log "== $backend: cold start, 1 + $COLDSTART_RUNS starts (dir $tmp)"
  python3 "$BENCH_DIR/coldstart.py" --bin "$BIN" --dir "$tmp" --database-url "$url" \
    --runs "$COLDSTART_RUNS" --prepare --log "$cs_log" >"$cs_out" \
    || { sed 's/^/  server: /' "$cs_log" | tail -n 40 >&2; die "the $backend cold-start runs failed (server output above)"; }
  local cs_first cs_min cs_median cs_max cs_gap cs_spawn
  cs_first=$(awk -F= '$1 == "prepare_ms" { print $2 }' "$cs_out")
  cs_min=$(awk -F= '$1 == "min_ms" { print $2 }' "$cs_out")
  cs_median=$(awk -F= '$1 == "median_ms" { print $2 }' "$cs_out")
  cs_max=$(awk -F= '$1 == "max_ms" { print $2 }' "$cs_out")
  cs_gap=$(awk -F= '$1 == "poll_gap_ms" { print $2 }' "$cs_out")
  cs_spawn=$(awk -F= '$1 == "spawn_ms" { print $2 }' "$cs_out")
  [[ -n $cs_median ]] || die "could not parse bench/coldstart.py output: $(cat "$cs_out")"

  port=$(free_port)
  local base="http://127.0.0.1:$port"
  SERVER_LOG="$tmp/server.log"
  log "== $backend: starting server on $base (dir $tmp)"
  (cd "$tmp" && RUST_LOG=warn exec "$BIN" serve --listen "127.0.0.1:$port" --database-url "$url") \
    >"$SERVER_LOG" 2>&1 </dev/null &
  SERVER_PID=$!
  PEAK_PER_LOAD=1

  local deadline=$((SECONDS + READY_TIMEOUT))
  until curl -fsS -o /dev/null --max-time 1 "$base/healthz" 2>/dev/null; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      local status=0
      wait "$SERVER_PID" || status=$?
      SERVER_PID=""
      sed 's/^/  server: /' "$SERVER_LOG" >&2
      die "the $backend server exited during start-up (status $status)"
    fi
    if ((SECONDS >= deadline)); then
      sed 's/^/  server: /' "$SERVER_LOG" >&2
      die "the $backend server was not ready within ${READY_TIMEOUT}s"
    fi
    sleep 0.1
  done

  # Setup: one user, its session token, and one checked request per load.
  local email="bench-$$-$n@example.com" password="bench-password-$$-$RANDOM"
  local body="$tmp/setup.json" code token
  code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 10 -X POST "$base/auth/signup" \
    -H 'Content-Type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\",\"name\":\"Bench User\"}") \
    || die "signup request failed"
  [[ $code == 2?? ]] || die "signup returned HTTP $code: $(head -c 500 "$body")"
  token=$(json_get "$body" session.token 2>/dev/null) \
    || die "signup response has no session.token: $(head -c 500 "$body")"

  code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 10 "$base/profile" \
    -H "Authorization: Bearer $token") || die "profile request failed"
  [[ $code == 200 ]] || die "GET /profile returned HTTP $code: $(head -c 500 "$body")"

  code=$(curl -sS -o "$body" -w '%{http_code}' --max-time 10 -X POST "$base/auth/signin" \
    -H 'Content-Type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}") || die "signin request failed"
  [[ $code == 200 ]] || die "POST /auth/signin returned HTTP $code: $(head -c 500 "$body")"

  # The setup's hashes left argon2 working memory mapped; the hashing threads
  # give it back after 1 s idle. Wait for that, so that each load's peak is
  # its own and the idle figure is the idle server.
  sleep 2
  # Loads. run_wrk resets VmHWM before each load and reads it after.
  local h_rps h_p50 h_p99 h_peak p_rps p_p50 p_p99 p_peak s_rps s_p50 s_p99 s_peak notes=()
  local idle_rss
  idle_rss=$(status_mib VmRSS)
  run_wrk healthz "$tmp/wrk-healthz.txt" 32 "$base/healthz"
  h_rps=$R_RPS h_p50=$R_P50 h_p99=$R_P99 h_peak=$R_PEAK
  [[ -z $R_NOTE ]] || notes+=("WARNING healthz: $R_NOTE")

  run_wrk profile "$tmp/wrk-profile.txt" 32 "$base/profile" -H "Authorization: Bearer $token"
  p_rps=$R_RPS p_p50=$R_P50 p_p99=$R_P99 p_peak=$R_PEAK
  [[ -z $R_NOTE ]] || notes+=("WARNING profile: $R_NOTE")

  BENCH_EMAIL=$email BENCH_PASSWORD=$password \
    run_wrk signin "$tmp/wrk-signin.txt" 8 "$base/auth/signin" -s "$BENCH_DIR/signin.lua"
  s_rps=$R_RPS s_p50=$R_P50 s_p99=$R_P99 s_peak=$R_PEAK
  [[ -z $R_NOTE ]] || notes+=("WARNING signin: $R_NOTE")

  # What the server keeps once the sign-in load is over.
  log "  waiting ${SETTLE_SECONDS}s after the signin load, then reading VmRSS"
  sleep "$SETTLE_SECONDS"
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server died after the signin load"
  local settled_rss settled_anon settled_file
  settled_rss=$(status_mib VmRSS)
  settled_anon=$(status_mib RssAnon)
  settled_file=$(status_mib RssFile)

  local peak_kind="peak of that load"
  if [[ $PEAK_PER_LOAD != 1 ]]; then
    peak_kind="WHOLE-PROCESS peak since start, clear_refs not writable"
    notes+=("WARNING peak RSS: /proc/PID/clear_refs could not be written, so each peak_rss is the whole-process peak up to the end of that load (an upper bound of the load's own peak)")
  fi

  stop_server
  drop_pg_db

  local errors plain_log="$tmp/server.plain.log"
  sed 's/\x1b\[[0-9;]*m//g' "$SERVER_LOG" >"$plain_log"
  errors=$(grep -cE 'ERROR|panicked' "$plain_log" || true)
  [[ $errors == 0 ]] || notes+=("WARNING server log has $errors ERROR/panic lines, first: $(grep -m1 -E 'ERROR|panicked' "$plain_log" | cut -c1-300)")

  local ratio sratio
  ratio=$(fdiv "$p_rps" "$h_rps")
  sratio=$(fdiv "$s_rps" "$HASH_CEILING")

  local cs_verdict="(no target)"
  if [[ $backend == sqlite ]]; then
    cs_verdict="(target median <= $TARGET_COLDSTART_MS ms) $(verdict_le "$cs_median" "$TARGET_COLDSTART_MS")"
  fi

  local lines=(
    "== $backend =="
    "$(printf '%-9s rps=%-10s p50=%-9s p99=%-9s peak_rss=%s' healthz "$h_rps" "${h_p50}ms" "${h_p99}ms" "${h_peak}MiB")"
    "$(printf '%-9s rps=%-10s p50=%-9s p99=%-9s peak_rss=%s' profile "$p_rps" "${p_p50}ms" "${p_p99}ms" "${p_peak}MiB")"
    "$(printf '%-9s rps=%-10s p50=%-9s p99=%-9s peak_rss=%s' signin "$s_rps" "${s_p50}ms" "${s_p99}ms" "${s_peak}MiB")"
    "(peak_rss: VmHWM, $peak_kind; RSS after the setup requests, before the loads: $idle_rss MiB)"
    "profile/healthz ratio = $ratio (target >= $TARGET_PROFILE_RATIO) $(verdict "$ratio" "$TARGET_PROFILE_RATIO")"
    "signin vs hash ceiling = $s_rps / $HASH_CEILING = $sratio (target >= $TARGET_SIGNIN_RATIO) $(verdict "$sratio" "$TARGET_SIGNIN_RATIO"); vs all cores hashing at once: $s_rps / ${PARALLEL_HASHES:-?} = $(fdiv "$s_rps" "${PARALLEL_HASHES:-0}")"
    "profile peak RSS = $p_peak MiB (target <= $TARGET_PROFILE_PEAK_MIB MiB) $(verdict_le "$p_peak" "$TARGET_PROFILE_PEAK_MIB")"
    "signin peak RSS = $s_peak MiB (target <= $TARGET_SIGNIN_PEAK_MIB MiB) $(verdict_le "$s_peak" "$TARGET_SIGNIN_PEAK_MIB")"
    "RSS ${SETTLE_SECONDS}s after signin = $settled_rss MiB (target <= $TARGET_SETTLED_RSS_MIB MiB) $(verdict_le "$settled_rss" "$TARGET_SETTLED_RSS_MIB") (anon $settled_anon, file $settled_file MiB)"
    "cold start (existing db, $COLDSTART_RUNS runs) min/median/max = $cs_min / $cs_median / $cs_max ms $cs_verdict"
    "  first start (creates and migrates the db) = $cs_first ms; poll gap = $cs_gap ms; fork+exec (in each run) = $cs_spawn ms"
  )
  lines+=("${notes[@]+"${notes[@]}"}")
  printf '%s\n' "${lines[@]}"
  echo
  SUMMARY+=("${lines[@]}")
}

# ------------------------------------------------------------------- main ---

for backend in $BACKENDS; do
  [[ $backend == sqlite || $backend == postgres ]] \
    || die "unknown backend '$backend' in BENCH_BACKENDS (expected sqlite and/or postgres)"
done
[[ -n ${BACKENDS// /} ]] || die "BENCH_BACKENDS is empty"
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"
[[ $COLDSTART_RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_COLDSTART_RUNS must be a positive integer (got '$COLDSTART_RUNS')"

if [[ -n ${BENCH_BIN:-} ]]; then
  log "using BENCH_BIN=$BIN (not building)"
else
  log "building: cargo build --release -p warden"
  (cd "$ROOT" && cargo build --release -p warden) || die "cargo build failed"
fi
[[ -x $BIN ]] || die "$BIN not found after the build"

if ! command -v wrk >/dev/null; then
  log "wrk not found; installing it with apt-get"
  if ! apt-get install -y wrk >/dev/null 2>&1; then
    apt-get update >/dev/null || die "apt-get update failed"
    apt-get install -y wrk >/dev/null || die "apt-get install -y wrk failed"
  fi
  command -v wrk >/dev/null || die "wrk is still not available after installing it"
fi

# Theoretical sign-in ceiling, measured once while the machine is idle.
# Other work on the machine (e.g. a concurrent cargo build) skews everything.
CPU_BUSY=$(cpu_busy_pct)
if awk -v b="$CPU_BUSY" 'BEGIN { exit !(b + 0 > 20) }'; then
  warn "the machine is not idle (${CPU_BUSY}% CPU busy before the run): numbers will be noisy"
fi
new_tmp_dir
hash_dir=$NEW_TMP
log "measuring the argon2id hash time: warden bench-hash --iterations 50"
hash_out=$(cd "$hash_dir" && RUST_LOG=warn "$BIN" bench-hash --iterations 50) \
  || die "warden bench-hash failed"
HASH_CEILING=$(awk -F= '$1 == "hash_ceiling_per_s" { print $2 }' <<<"$hash_out")
SINGLE_HASH_MS=$(awk -F= '$1 == "single_hash_ms" { print $2 }' <<<"$hash_out")
PARALLEL_HASHES=$(awk -F= '$1 == "parallel_hashes_per_s" { print $2 }' <<<"$hash_out")
CORES=$(awk -F= '$1 == "cores" { print $2 }' <<<"$hash_out")
HASH_PARAMS=$(grep -m1 '^argon2id' <<<"$hash_out" || true)
[[ -n $HASH_CEILING ]] || die "could not parse hash_ceiling_per_s from bench-hash output: $hash_out"
log "$HASH_PARAMS: single_hash_ms=$SINGLE_HASH_MS cores=$CORES hash_ceiling_per_s=$HASH_CEILING"
echo

n=0
for backend in $BACKENDS; do
  bench_backend "$backend" "$n"
  n=$((n + 1))
done

echo "================ summary ================"
echo "duration per load: $DURATION; wrk -t2 (healthz/profile -c32, signin -c8); $(nproc) cores shared by wrk and the server"
echo "CPU busy before the run (other processes): ${CPU_BUSY}%"
echo "cold start: $COLDSTART_RUNS timed starts per backend on an existing database, exec to first 200 from GET /healthz (bench/coldstart.py)"
echo "RSS: peak_rss = VmHWM reset before each load with clear_refs (see each backend's note); RSS after signin = VmRSS ${SETTLE_SECONDS}s after the signin load"
echo "hash: ${HASH_PARAMS:-argon2id} single_hash_ms=$SINGLE_HASH_MS cores=$CORES ceiling=$HASH_CEILING/s (cores / single hash; measured with all cores hashing at once: ${PARALLEL_HASHES:-?}/s)"
printf '%s\n' "${SUMMARY[@]+"${SUMMARY[@]}"}"
