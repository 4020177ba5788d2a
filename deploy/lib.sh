# shellcheck shell=bash
# Helpers shared by deploy/check.sh and bench/cluster.sh: three `warden serve`
# nodes on one fresh PostgreSQL database behind HAProxy (deploy/haproxy.cfg),
# and the cleanup of all of it on exit. Functions only: sourcing this file
# runs nothing.
#
# The sourcing script sets, before calling them:
#   LOG_PREFIX     the tag of log/warn/die lines ("check" -> "[check] ...")
#   DIE_STATUS     the exit status of die
#   KEEP_VAR       the name of the variable that keeps the temp dir when it
#                  is 1 (CHECK_KEEP, BENCH_KEEP); read on exit
#   PG_HOST PG_PORT PG_USER PG_ADMIN_DB   the PostgreSQL server
#   NODES BIN node_env   node count, warden binary, the nodes' environment
# and they set and use TMP, PG_DB, DB_URL, PORTS, LB, NODE_PIDS and HAPROXY_PID.

log() { printf '[%s] %s\n' "$LOG_PREFIX" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "$LOG_PREFIX" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$LOG_PREFIX" "$*" >&2; exit "$DIE_STATUS"; }

require_cmds() { # command...
  local c
  for c in "$@"; do command -v "$c" >/dev/null || die "$c is required"; done
}

# ------------------------------------------------------------- cleanup ---

psql_admin() {
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_ADMIN_DB" -v ON_ERROR_STOP=1 -X -q -t -A "$@"
}

# shellcheck disable=SC2317  # called from the EXIT trap
stop_pid() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  kill -CONT "$pid" 2>/dev/null || true # a node stopped by CHECK_SIGNAL=STOP
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # the EXIT trap
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  stop_pid "$HAPROXY_PID"
  for p in "${NODE_PIDS[@]+"${NODE_PIDS[@]}"}"; do stop_pid "$p"; done
  if [[ -n $PG_DB ]]; then
    psql_admin -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 \
      || warn "could not drop database $PG_DB"
  fi
  if [[ -n $TMP ]]; then
    if [[ ${!KEEP_VAR:-0} == 1 ]]; then log "kept $TMP"; else rm -rf -- "$TMP"; fi
  fi
  exit "$rc"
}

# Nothing started yet; from now on everything started is removed on exit,
# also on failure and on Ctrl-C.
init_cleanup() {
  TMP="" PG_DB="" HAPROXY_PID=""
  NODE_PIDS=()
  trap cleanup EXIT
  trap 'log "interrupted"; exit 130' INT
  trap 'log "terminated"; exit 143' TERM
}

# ---------------------------------------------------------------- setup ---

# apt_install <command> [package]: installs the package (default: the
# command's name) with apt-get unless the command is there.
apt_install() {
  command -v "$1" >/dev/null && return 0
  local pkg=${2:-$1}
  log "$1 not found; installing ${2:-it} with apt-get"
  if ! apt-get install -y "$pkg" >/dev/null 2>&1; then
    apt-get update >/dev/null || die "apt-get update failed"
    apt-get install -y "$pkg" >/dev/null || die "apt-get install -y $pkg failed"
  fi
  command -v "$1" >/dev/null || die "$1 is still not available"
}

# setup_tmp_and_db <temp dir name> <database prefix>: a temp dir
# /tmp/<name>.XXXXXX in TMP and a fresh database <prefix>_<pid>_<random> in
# PG_DB (its URL in DB_URL), both removed by cleanup.
setup_tmp_and_db() {
  psql_admin -c 'select 1' >/dev/null || die "cannot reach PostgreSQL at $PG_USER@$PG_HOST:$PG_PORT/$PG_ADMIN_DB"
  TMP=$(mktemp -d "/tmp/$1.XXXXXX")
  PG_DB="$2_$$_$RANDOM"
  psql_admin -c "CREATE DATABASE \"$PG_DB\"" >/dev/null
  # shellcheck disable=SC2034  # used by the sourcing script
  DB_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB"
}

free_ports() {
  # n distinct free ports (held open together while picking, so no repeats).
  python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
# PORTS: a port for each node and, last (${PORTS[NODES]}), HAProxy's; LB: its URL.
pick_ports() {
  read -r -a PORTS <<<"$(free_ports $((NODES + 1)))"
  # shellcheck disable=SC2034  # used by the sourcing script
  LB="http://127.0.0.1:${PORTS[$NODES]}"
}

random_secret() { python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'; }

# Node i (1..NODES) on 127.0.0.1:${PORTS[i-1]}, in $TMP/node<i> with the
# environment node_env, its output in $TMP/node<i>.log.
start_nodes() {
  local i
  for ((i = 1; i <= NODES; i++)); do
    mkdir -p "$TMP/node$i"
    # shellcheck disable=SC2154  # node_env: set by the sourcing script
    (cd "$TMP/node$i" && exec env "${node_env[@]}" WARDEN_LISTEN="127.0.0.1:${PORTS[$((i - 1))]}" "$BIN" serve) \
      >"$TMP/node$i.log" 2>&1 </dev/null &
    NODE_PIDS+=($!)
  done
}

# wait_ready <port> <seconds> <command...>: GET /readyz on the port until it
# answers, running the command between tries (it may die); 1 after <seconds>.
wait_ready() {
  local port=$1 deadline=$((SECONDS + $2))
  shift 2
  until curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/readyz" 2>/dev/null; do
    "$@"
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# What deploy/haproxy.cfg reads from its environment: the nodes, the address
# it listens on (${PORTS[NODES]}), its stats socket and its log.
haproxy_env() {
  export WARDEN_NODE1="127.0.0.1:${PORTS[0]}" WARDEN_NODE2="127.0.0.1:${PORTS[1]}" WARDEN_NODE3="127.0.0.1:${PORTS[2]}"
  export WARDEN_LB_BIND="127.0.0.1:${PORTS[$NODES]}" HAPROXY_STATS_SOCKET="$TMP/haproxy.sock"
  export HAPROXY_LOG=stdout HAPROXY_LOG_FORMAT=iso
}

start_haproxy() { # config file (haproxy_env first)
  haproxy -db -f "$1" >"$TMP/haproxy.log" 2>&1 </dev/null &
  HAPROXY_PID=$!
}

stat_cmd() { # runtime API command -> its answer
  python3 - "$HAPROXY_STATS_SOCKET" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b"\n")
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
sys.stdout.write(data.decode())
EOF
}
server_status() { stat_cmd "show stat" | awk -F, -v s="$1" '$1 == "warden" && $2 == s { print $18 }'; }
wait_status() { # server wanted-status
  local deadline=$((SECONDS + 15))
  until [[ $(server_status "$1") == "$2" ]]; do
    ((SECONDS < deadline)) || die "HAProxy: $1 is $(server_status "$1"), not $2"
    sleep 0.1
  done
}
