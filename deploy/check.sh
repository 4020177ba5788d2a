#!/usr/bin/env bash
# Failover check: three `warden serve` nodes on one fresh PostgreSQL database
# behind HAProxy (deploy/haproxy.cfg, unchanged: the node addresses come in
# through its environment variables). Under a steady load of sign-ins and
# GET /profile calls with existing sessions it kill -9s one node (or stops it,
# CHECK_SIGNAL=STOP) and reports
#   - how long HAProxy took to mark it DOWN (its stats socket, polled every
#     10 ms; the "is DOWN" line of its log is printed too),
#   - how many requests failed before and after that moment,
#   - whether every session created before the kill still works afterwards.
# See deploy/README.md.
#
# Exit status: 0 when no request started after HAProxy noticed failed and no
# session was lost; 1 when one did or was; other non-zero on a setup error.
# Everything it starts (nodes, HAProxy, the database, the temp dir) is
# removed on exit, also on failure and on Ctrl-C.
#
# Environment:
#   WARDEN_BIN      the binary (default: target/release/warden of this repo;
#                   build it with `cargo build --release -p warden`)
#   CHECK_PG_HOST / CHECK_PG_PORT / CHECK_PG_USER / CHECK_PG_ADMIN_DB
#                   PostgreSQL (default 127.0.0.1 / 5432 / postgres / test);
#                   the script creates warden_check_<pid>_<random> and drops it
#   CHECK_WARMUP    seconds of load before the kill (default 5)
#   CHECK_AFTER     seconds of load after HAProxy noticed (default 10)
#   CHECK_KILL      which node to kill, 1-3 (default 2)
#   CHECK_SIGNAL    KILL (default: the node dies, its port refuses connections)
#                   or STOP (the node hangs: connections are accepted and never
#                   answered, so in-flight requests wait for HAProxy's
#                   `timeout server`)
#   CHECK_KEEP=1    keep the temp dir (node and HAProxy logs, requests.csv)

set -euo pipefail

DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$DEPLOY_DIR/lib.sh"
ROOT=$(cd "$DEPLOY_DIR/.." && pwd)
BIN=${WARDEN_BIN:-$ROOT/target/release/warden}
PG_HOST=${CHECK_PG_HOST:-127.0.0.1}
PG_PORT=${CHECK_PG_PORT:-5432}
PG_USER=${CHECK_PG_USER:-postgres}
PG_ADMIN_DB=${CHECK_PG_ADMIN_DB:-test}
WARMUP=${CHECK_WARMUP:-5}
AFTER=${CHECK_AFTER:-10}
KILL=${CHECK_KILL:-2}
SIGNAL=${CHECK_SIGNAL:-KILL}
NODES=3
SESSIONS_PER_NODE=10
SIGNIN_USERS=6

LOG_PREFIX=check DIE_STATUS=2 KEEP_VAR=CHECK_KEEP

[[ $KILL =~ ^[1-3]$ ]] || die "CHECK_KILL must be 1, 2 or 3 (got '$KILL')"
[[ $SIGNAL == KILL || $SIGNAL == STOP ]] || die "CHECK_SIGNAL must be KILL or STOP (got '$SIGNAL')"
[[ -x $BIN ]] || die "$BIN not found: build it (cargo build --release -p warden) or set WARDEN_BIN"
require_cmds curl python3 psql

# ------------------------------------------------------------- cleanup ---

init_cleanup

# ---------------------------------------------------------------- setup ---

apt_install haproxy
setup_tmp_and_db warden-check warden_check
log "database $PG_DB, temp dir $TMP"

pick_ports

# Production settings, the same on every node (deploy/README.md lists them):
# one secret, one database, shared rate-limit counters, HAProxy trusted for
# X-Forwarded-For. Mail must be SMTP in production; nothing here sends any,
# so it points at a port nobody listens on.
SECRET=$(random_secret)
node_env=(
  WARDEN_ENV=production
  WARDEN_SECRET="$SECRET"
  DATABASE_URL="$DB_URL"
  WARDEN_BASE_URL="$LB"
  WARDEN_HTTP__TRUSTED_PROXIES='["127.0.0.1"]'
  WARDEN_RATE_LIMIT__STORAGE=database
  WARDEN_MAIL__TRANSPORT=smtp
  WARDEN_MAIL__SMTP__HOST=127.0.0.1
  WARDEN_MAIL__SMTP__PORT=9
  WARDEN_MAIL__SMTP__TLS=none
  WARDEN_LOG__FORMAT=json
  WARDEN_LOG__LEVEL=warn
  # The load comes from one address (this machine), far above the
  # per-client limits (100 requests / 10 s, sign-in and sign-up 3 / 10 s): raise them,
  # while keeping the limiter on, counting every request in the database.
  WARDEN_RATE_LIMIT__MAX=100000000
  WARDEN_RATE_LIMIT__RULES='[{path="/auth/signin",window="10s",max=100000000},{path="/auth/signup",window="10s",max=100000000}]'
)

log "starting $NODES nodes (production mode, one database) and HAProxy on $LB"
start_nodes

haproxy_env
haproxy -c -q -f "$DEPLOY_DIR/haproxy.cfg" || die "haproxy -c rejected deploy/haproxy.cfg"
start_haproxy "$DEPLOY_DIR/haproxy.cfg"

# Every node ready (GET /readyz directly), then HAProxy sees all of them UP.
node_log() { sed 's/^/  node'"$1"': /' "$TMP/node$1.log" >&2; }
# shellcheck disable=SC2317  # called by wait_ready
node_running() { # i: dies, with its log, when node i has exited
  kill -0 "${NODE_PIDS[$(($1 - 1))]}" 2>/dev/null && return 0
  node_log "$1"
  die "node $1 exited during start-up"
}
for ((i = 1; i <= NODES; i++)); do
  wait_ready "${PORTS[$((i - 1))]}" 30 node_running "$i" || { node_log "$i"; die "node $i not ready within 30 s"; }
done
deadline=$((SECONDS + 15))
for ((i = 1; i <= NODES; i++)); do
  until [[ $(server_status "node$i" 2>/dev/null) == UP ]]; do
    kill -0 "$HAPROXY_PID" 2>/dev/null || { cat "$TMP/haproxy.log" >&2; die "haproxy exited"; }
    ((SECONDS < deadline)) || { cat "$TMP/haproxy.log" >&2; die "HAProxy does not see node$i UP"; }
    sleep 0.1
  done
done
log "all $NODES nodes UP in HAProxy"

# Users and sessions before the load: $SESSIONS_PER_NODE sessions created on
# each node directly (so some live on the node that will be killed), plus
# the users the sign-in load uses.
python3 - "$TMP" "$SESSIONS_PER_NODE" "$SIGNIN_USERS" "$LB" "${PORTS[@]:0:$NODES}" <<'EOF' || die "setup requests failed"
import json, sys, urllib.error, urllib.request
tmp, per_node, n_users, lb, ports = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:]
def post(base, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"POST {base}{path}: HTTP {e.code}: {e.read()[:300]!r}")
sessions, users = [], []
for n, port in enumerate(ports, 1):
    base = f"http://127.0.0.1:{port}"
    for k in range(per_node):
        email, pw = f"check-n{n}-{k}@example.com", f"check-password-{n}-{k}-x"
        tok = post(base, "/auth/signup", {"email": email, "password": pw, "name": f"Node {n} user {k}"})["session"]["token"]
        sessions.append({"token": tok, "node": f"node{n}"})
for k in range(n_users):
    email, pw = f"check-signin-{k}@example.com", f"check-signin-password-{k}"
    post(lb, "/auth/signup", {"email": email, "password": pw, "name": f"Sign-in user {k}"})
    users.append({"email": email, "password": pw})
json.dump(sessions, open(f"{tmp}/sessions.json", "w"))
json.dump(users, open(f"{tmp}/users.json", "w"))
print(f"{len(sessions)} sessions ({per_node} per node), {len(users)} sign-in users", file=sys.stderr)
EOF

# X-Forwarded-For: a sign-in through HAProxy that arrives with
# "X-Forwarded-For: 203.0.113.7" reaches the node as "203.0.113.7, <client>";
# the client (this machine, 127.0.0.1) is in trusted_proxies here because it
# shares HAProxy's address, so the node records 203.0.113.7 as the session's
# address. It shows that HAProxy forwards the header and Warden reads it.
ip=$(python3 - "$LB" "$TMP/users.json" <<'EOF'
import json, sys, urllib.request
u = json.load(open(sys.argv[2]))[0]
req = urllib.request.Request(sys.argv[1] + "/auth/signin", data=json.dumps(u).encode(),
                             headers={"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.7"})
tok = json.load(urllib.request.urlopen(req, timeout=30))["session"]["token"]
req = urllib.request.Request(sys.argv[1] + "/sessions", headers={"Authorization": "Bearer " + tok})
print(next(s["ipAddress"] for s in json.load(urllib.request.urlopen(req, timeout=10))["sessions"] if s["current"]))
EOF
) || die "sign-in or GET /sessions through HAProxy failed"
if [[ $ip == 203.0.113.7 ]]; then
  log "X-Forwarded-For: the session's ipAddress is $ip, the forwarded client address"
else
  log "WARNING: X-Forwarded-For not applied: the session's ipAddress is $ip, not 203.0.113.7"
fi

# Shared rate limits: POST /auth/request-password-reset is limited to 3 per
# 60 s per client (a built-in rule, left as it is). Four requests from this
# machine, to node1, node2, node3 and node1 directly: with counters shared
# in the database the fourth is refused (429), whichever node gets it; with
# per-node counters (`memory`) it would pass. (An unknown email: nothing is
# mailed.)
codes=()
for n in 1 2 3 1; do
  codes+=("$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
    "http://127.0.0.1:${PORTS[$((n - 1))]}/auth/request-password-reset" \
    -H 'Content-Type: application/json' -d '{"email":"nobody@example.com"}')")
done
if [[ ${codes[*]} == "200 200 200 429" ]]; then
  log "rate limits shared between nodes: password-reset requests to node1,2,3,1 answered ${codes[*]}"
else
  log "WARNING: rate limits not shared as expected: password-reset requests to node1,2,3,1 answered ${codes[*]} (expected 200 200 200 429)"
fi

log "load: ${WARMUP}s, then kill -$SIGNAL node$KILL (pid ${NODE_PIDS[$((KILL - 1))]}), then ${AFTER}s after HAProxy notices"
rc=0
# (stderr of the group goes to /dev/null only for bash's own "Killed" notice
# about the node; the load script's stderr still reaches the terminal.)
{
  python3 "$DEPLOY_DIR/failover_load.py" --lb "$LB" \
    --sessions "$TMP/sessions.json" --users "$TMP/users.json" \
    --kill-pid "${NODE_PIDS[$((KILL - 1))]}" --signal "$SIGNAL" --kill-server "warden/node$KILL" \
    --stats-socket "$HAPROXY_STATS_SOCKET" --warmup "$WARMUP" --after "$AFTER" \
    --requests-csv "$TMP/requests.csv" 2>&3 || rc=$?
  kill -KILL "${NODE_PIDS[$((KILL - 1))]}" 2>/dev/null || true # (STOP: end it now)
  wait "${NODE_PIDS[$((KILL - 1))]}" || true
} 3>&2 2>/dev/null
NODE_PIDS[KILL - 1]=""

# HAProxy's own log (the iso-timestamped lines; the [WARNING] copies on
# stderr are skipped) about the killed node, since it was last UP.
echo "HAProxy's log of the checks of node$KILL since it was last UP:"
awk -v s="warden/node$KILL " '/^[0-9][0-9][0-9][0-9]-/ && /Health check|Server warden/ && index($0, s) {
    if ($0 ~ /is UP/) { n = 0; next }
    buf[++n] = $0
  }
  END { for (i = 1; i <= n; i++) print "  " buf[i]; if (!n) print "  (none)" }' "$TMP/haproxy.log"
for ((i = 1; i <= NODES; i++)); do
  errors=$(grep -ciE '"level":"ERROR"|panicked' "$TMP/node$i.log" || true)
  [[ $errors == 0 ]] || echo "node$i log: $errors ERROR/panic lines, first: $(grep -m1 -iE '"level":"ERROR"|panicked' "$TMP/node$i.log" | cut -c1-300)"
done
[[ $rc -le 1 ]] || die "failover_load.py failed (status $rc)"
exit "$rc"
