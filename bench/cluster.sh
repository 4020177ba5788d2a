#!/usr/bin/env bash
# Warden behind HAProxy: three nodes on one PostgreSQL database, HAProxy with
# deploy/haproxy.cfg (node addresses through its environment variables).
#
# 1. Session checks: GET /profile with a bearer token under wrk (as
#    bench/run.sh's `profile` load), directly against node1 (no proxy: the
#    reference), through HAProxy with only node1 in rotation (node2 and node3
#    in maintenance) and through HAProxy with all three. Prints requests/s,
#    p50/p99 and each node's peak RSS and CPU seconds during the load.
# 2. Invalidation traffic: the CPU seconds nodes B and C (node2, node3) use
#    over BENCH_INVAL_SECONDS while idle, and over the same length of time
#    while a loop signs in and out BENCH_SIGNOUT_RATE times a second against
#    node A (node1) directly. The difference is what other nodes' sign-outs
#    cost a node, whatever the binary does to propagate them.
# 3. The stale window: how long node B still accepts a token after it was
#    signed out on node A (B had it in its session cache).
#
# Environment:
#   BENCH_DURATION        wrk duration of each load (default 10s)
#   BENCH_CONNECTIONS     wrk connections (default 32)
#   BENCH_INVAL_SECONDS   length of the idle and the sign-out interval (default 20)
#   BENCH_SIGNOUT_RATE    sign-in + sign-out pairs per second (default 50)
#   BENCH_STALE_TRIALS    sign-outs timed for the stale window (default 10)
#   BENCH_BIN             measure this binary instead of building target/release/warden
#   BENCH_KEEP=1          keep the temp dir (node and HAProxy logs, wrk output)
#   BENCH_PG_HOST / BENCH_PG_PORT / BENCH_PG_USER / BENCH_PG_ADMIN_DB
#                         PostgreSQL (default 127.0.0.1 / 5432 / postgres / test);
#                         the script creates warden_lbbench_* and drops it
# Any other WARDEN_* variable is passed to the nodes. See bench/README.md.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../deploy/lib.sh
source "$ROOT/deploy/lib.sh"
BIN=${BENCH_BIN:-$ROOT/target/release/warden}
HAPROXY_CFG=$ROOT/deploy/haproxy.cfg
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-32}
INVAL_SECONDS=${BENCH_INVAL_SECONDS:-20}
SIGNOUT_RATE=${BENCH_SIGNOUT_RATE:-50}
STALE_TRIALS=${BENCH_STALE_TRIALS:-10}
PG_HOST=${BENCH_PG_HOST:-127.0.0.1}
PG_PORT=${BENCH_PG_PORT:-5432}
PG_USER=${BENCH_PG_USER:-postgres}
PG_ADMIN_DB=${BENCH_PG_ADMIN_DB:-test}
NODES=3

LOG_PREFIX=cluster-bench DIE_STATUS=1 KEEP_VAR=BENCH_KEEP

[[ $INVAL_SECONDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_INVAL_SECONDS must be a positive integer"
require_cmds curl python3 psql

# ------------------------------------------------------------- cleanup ---

init_cleanup

# -------------------------------------------------------------- helpers ---

CLK_TCK=$(getconf CLK_TCK)
# CPU seconds (user + system) of a process so far.
cpu_s() {
  awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat"
}
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
hwm_mib() { awk '$1 == "VmHWM:" { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
rss_mib() { awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
PEAK_PER_LOAD=1
reset_hwm() {
  if ! { echo 5 >"/proc/$1/clear_refs"; } 2>/dev/null; then
    [[ $PEAK_PER_LOAD == 0 ]] || warn "cannot write /proc/$1/clear_refs: peak RSS is the peak since start"
    PEAK_PER_LOAD=0
  fi
}
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u != "ms") { print "n/a"; exit }
    printf "%.2f", n
  }'
}
check_alive() {
  local i
  for ((i = 0; i < NODES; i++)); do
    kill -0 "${NODE_PIDS[$i]}" 2>/dev/null || { tail -n 30 "$TMP/node$((i + 1)).log" >&2; die "node$((i + 1)) died"; }
  done
  kill -0 "$HAPROXY_PID" 2>/dev/null || die "haproxy died"
}

# ---------------------------------------------------------------- setup ---

if [[ -n ${BENCH_BIN:-} ]]; then
  log "using BENCH_BIN=$BIN (not building)"
else
  log "building: cargo build --release -p warden"
  (cd "$ROOT" && cargo build --release -p warden) || die "cargo build failed"
fi
[[ -x $BIN ]] || die "$BIN not found"
apt_install wrk wrk
apt_install haproxy haproxy
setup_tmp_and_db warden-cluster warden_lbbench

pick_ports

# The nodes: development defaults (as bench/run.sh, so the figures compare;
# rate limiting is off there), but one secret for all and no dashboards
# (they would all want 127.0.0.1:9400). Argon2 is cheap here (1 MiB, one
# pass) so that the sign-in/sign-out loop measures session churn and its
# propagation, not password hashing; the session checks do not hash.
SECRET=$(random_secret)
node_env=(
  RUST_LOG=warn
  WARDEN_SECRET="$SECRET"
  DATABASE_URL="$DB_URL"
  WARDEN_DASHBOARD__ENABLED=false
  WARDEN_HTTP__TRUSTED_PROXIES='["127.0.0.1"]'
  WARDEN_PASSWORD__ARGON2__MEMORY_KIB="${WARDEN_PASSWORD__ARGON2__MEMORY_KIB:-1024}"
  WARDEN_PASSWORD__ARGON2__ITERATIONS="${WARDEN_PASSWORD__ARGON2__ITERATIONS:-1}"
)
start_nodes
haproxy_env
start_haproxy "$HAPROXY_CFG"

for ((i = 1; i <= NODES; i++)); do
  wait_ready "${PORTS[$((i - 1))]}" 30 check_alive || die "node$i not ready within 30 s"
done
for ((i = 1; i <= NODES; i++)); do wait_status "node$i" UP; done
log "3 nodes on $PG_DB, HAProxy on $LB; $(nproc) cores shared with wrk, HAProxy and the loop"

# One user and its token for the session checks, and users for the loop.
python3 - "$LB" "$TMP" <<'EOF' || die "setup requests failed"
import json, sys, urllib.request
lb, tmp = sys.argv[1], sys.argv[2]
def signup(email, pw):
    req = urllib.request.Request(lb + "/auth/signup", headers={"Content-Type": "application/json"},
        data=json.dumps({"email": email, "password": pw, "name": "Bench"}).encode())
    return json.load(urllib.request.urlopen(req, timeout=30))["session"]["token"]
open(f"{tmp}/token", "w").write(signup("cluster-bench@example.com", "cluster-bench-password"))
users = [{"email": f"loop-{k}@example.com", "password": f"loop-password-{k}"} for k in range(20)]
for u in users:
    signup(u["email"], u["password"])
json.dump(users, open(f"{tmp}/users.json", "w"))
EOF
TOKEN=$(cat "$TMP/token")
code=$(curl -s -o /dev/null -w '%{http_code}' "$LB/profile" -H "Authorization: Bearer $TOKEN")
[[ $code == 200 ]] || die "GET /profile through HAProxy answered $code"

# ---------------------------------------------------- 1. session checks ---

ROWS=()
# load <label> <url> <pids to report: "node1 node2 ...">
load() {
  local label=$1 url=$2 nodes=$3 out="$TMP/wrk-${1// /_}.txt" n pid
  local -A cpu0
  for n in $nodes; do pid=${NODE_PIDS[$((${n#node} - 1))]}; reset_hwm "$pid"; cpu0[$n]=$(cpu_s "$pid"); done
  local hcpu0
  hcpu0=$(cpu_s "$HAPROXY_PID")
  log "$label: wrk --latency -t2 -c$CONNS -d$DURATION $url"
  wrk --latency -t2 -c"$CONNS" -d"$DURATION" "$url" -H "Authorization: Bearer $TOKEN" >"$out" 2>&1 \
    || { cat "$out" >&2; die "wrk failed"; }
  check_alive
  local rps p50 p99 nodes_txt="" haproxy_cpu=""
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  for n in $nodes; do
    pid=${NODE_PIDS[$((${n#node} - 1))]}
    nodes_txt+=" $n: peak_rss=$(hwm_mib "$pid")MiB cpu=$(fsub "$(cpu_s "$pid")" "${cpu0[$n]}")s;"
  done
  [[ $url == "$LB"* ]] && haproxy_cpu=" haproxy: cpu=$(fsub "$(cpu_s "$HAPROXY_PID")" "$hcpu0")s"
  if grep -q -E 'Non-2xx|Socket errors' "$out"; then
    warn "$label: $(grep -E 'Non-2xx|Socket errors' "$out" | tr '\n' ' ')"
  fi
  ROWS+=("$(printf '%-24s rps=%-10s p50=%-8s p99=%-8s%s%s' "$label" "$rps" "${p50}ms" "${p99}ms" "$nodes_txt" "$haproxy_cpu")")
}

# Warm-up (connections, caches), not measured.
wrk -t2 -c"$CONNS" -d2s "$LB/profile" -H "Authorization: Bearer $TOKEN" >/dev/null
load "direct node1" "http://127.0.0.1:${PORTS[0]}/profile" "node1"
stat_cmd "set server warden/node2 state maint" >/dev/null
stat_cmd "set server warden/node3 state maint" >/dev/null
wait_status node2 MAINT
wait_status node3 MAINT
load "haproxy -> 1 node" "$LB/profile" "node1"
stat_cmd "set server warden/node2 state ready" >/dev/null
stat_cmd "set server warden/node3 state ready" >/dev/null
wait_status node2 UP
wait_status node3 UP
load "haproxy -> 3 nodes" "$LB/profile" "node1 node2 node3"

# ------------------------------------------ 2. invalidation traffic cost ---

# CPU seconds of node2 and node3 (and node1) over one interval.
interval() { # label command...
  local label=$1 i c0=() c1=()
  shift
  for ((i = 0; i < NODES; i++)); do c0+=("$(cpu_s "${NODE_PIDS[$i]}")"); done
  "$@"
  for ((i = 0; i < NODES; i++)); do c1+=("$(cpu_s "${NODE_PIDS[$i]}")"); done
  check_alive
  INTERVAL_ROWS+=("$(printf '%-34s node1(A)=%6ss  node2(B)=%6ss  node3(C)=%6ss' "$label" \
    "$(fsub "${c1[0]}" "${c0[0]}")" "$(fsub "${c1[1]}" "${c0[1]}")" "$(fsub "${c1[2]}" "${c0[2]}")")")
  B_DELTA+=("$(fsub "${c1[1]}" "${c0[1]}")") C_DELTA+=("$(fsub "${c1[2]}" "${c0[2]}")")
}
signout_loop() {
  python3 - --url "http://127.0.0.1:${PORTS[0]}" --users "$TMP/users.json" \
    --rate "$SIGNOUT_RATE" --duration "$INVAL_SECONDS" >"$TMP/loop.txt" <<'EOF' || true
import argparse, http.client, json, sys, threading, time, urllib.parse
ap = argparse.ArgumentParser()
ap.add_argument("--url"); ap.add_argument("--users"); ap.add_argument("--rate", type=float)
ap.add_argument("--duration", type=float); ap.add_argument("--workers", type=int, default=4)
a = ap.parse_args()
u = urllib.parse.urlsplit(a.url)
users = json.load(open(a.users))
lock = threading.Lock()
st = {"pairs": 0, "failed": 0, "codes": {}}
t0 = time.time(); t_stop = t0 + a.duration
def count(c):
    with lock:
        st["codes"][str(c)] = st["codes"].get(str(c), 0) + 1
def worker(w):
    # Each worker: a fixed schedule of rate/workers pairs a second.
    conn, gap, i = None, a.workers / a.rate, w
    nxt = t0 + w * gap / a.workers
    while True:
        d = nxt - time.time()
        if d > 0:
            time.sleep(d)
        if time.time() >= t_stop:
            break
        nxt += gap
        user, i, ok = users[i % len(users)], i + a.workers, False
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
            conn.request("POST", "/auth/signin", body=json.dumps(user), headers={"Content-Type": "application/json"})
            r = conn.getresponse(); body = r.read(); count(r.status)
            if r.status == 200:
                tok = json.loads(body)["session"]["token"]
                conn.request("POST", "/auth/signout", body=b"", headers={"Authorization": "Bearer " + tok})
                r = conn.getresponse(); r.read(); count(r.status)
                ok = r.status == 200
        except Exception as e:
            count(type(e).__name__)
            if conn is not None:
                conn.close()
            conn = None
        with lock:
            st["pairs" if ok else "failed"] += 1
threads = [threading.Thread(target=worker, args=(w,)) for w in range(a.workers)]
for t in threads: t.start()
for t in threads: t.join()
secs = time.time() - t0
codes = ",".join(f"{k}:{v}" for k, v in sorted(st["codes"].items()))
print(f"pairs={st['pairs']} failed={st['failed']} seconds={secs:.1f} rate={st['pairs'] / secs:.1f}/s codes={codes}")
EOF
}

INTERVAL_ROWS=() B_DELTA=() C_DELTA=()
log "invalidation: ${INVAL_SECONDS}s idle, then ${INVAL_SECONDS}s of sign-in+sign-out at ${SIGNOUT_RATE}/s against node1"
interval "idle" sleep "$INVAL_SECONDS"
interval "sign-in+sign-out on A at ${SIGNOUT_RATE}/s" signout_loop
interval "idle again" sleep "$INVAL_SECONDS"
LOOP=$(cat "$TMP/loop.txt")

# How long node B keeps accepting a token after a sign-out on node A: sign
# in on A, GET /profile on B (B now has the session in its cache), sign out
# on A, then GET /profile on B every 10 ms until it answers 401.
log "stale window: $STALE_TRIALS x (sign in on A, check on B, sign out on A, poll B until 401)"
STALE=$(python3 - "http://127.0.0.1:${PORTS[0]}" "http://127.0.0.1:${PORTS[1]}" "$TMP/users.json" "$STALE_TRIALS" <<'EOF'
import http.client, json, sys, time, urllib.parse
a, b, users, n = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3])), int(sys.argv[4])
def conn(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=15)
ca, cb = conn(a), conn(b)
def req(c, method, path, tok=None, body=None):
    h = {"Content-Type": "application/json"}
    if tok:
        h["Authorization"] = "Bearer " + tok
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    return r.status, r.read()
waits = []
for k in range(n):
    st, body = req(ca, "POST", "/auth/signin", body=json.dumps(users[k % len(users)]))
    assert st == 200, st
    tok = json.loads(body)["session"]["token"]
    assert req(cb, "GET", "/profile", tok)[0] == 200
    assert req(ca, "POST", "/auth/signout", tok)[0] == 200
    t0 = time.time()
    while req(cb, "GET", "/profile", tok)[0] == 200:
        if time.time() - t0 > 60:
            break
        time.sleep(0.01)
    waits.append(time.time() - t0)
waits.sort()
print(f"min={waits[0]*1000:.0f}ms median={waits[len(waits)//2]*1000:.0f}ms max={waits[-1]*1000:.0f}ms over {n} sign-outs")
EOF
) || die "stale-window measurement failed"

# ----------------------------------------------------------------- report ---

echo
echo "== session checks: GET /profile with a bearer token, wrk -t2 -c$CONNS -d$DURATION =="
printf '%s\n' "${ROWS[@]}"
echo "(peak_rss: VmHWM, $([[ $PEAK_PER_LOAD == 1 ]] && echo "reset before each load" || echo "peak since start"); cpu: user+system seconds during the load; $(nproc) cores shared by wrk, HAProxy and the nodes)"
echo
echo "== invalidation traffic: CPU seconds per node over ${INVAL_SECONDS}s =="
printf '%s\n' "${INTERVAL_ROWS[@]}"
echo "loop (sign-in + sign-out pairs against node1 directly): $LOOP"
echo "after a sign-out on node1, node2 still accepted the token for: $STALE (session.cache_ttl: ${WARDEN_SESSION__CACHE_TTL:-5s, the default})"
awk -v b0="${B_DELTA[0]}" -v b1="${B_DELTA[1]}" -v b2="${B_DELTA[2]}" \
    -v c0="${C_DELTA[0]}" -v c1="${C_DELTA[1]}" -v c2="${C_DELTA[2]}" -v s="$INVAL_SECONDS" 'BEGIN {
  bi = (b0 + b2) / 2; ci = (c0 + c2) / 2
  printf "extra CPU while A signs users out (vs the mean of the idle intervals): node2(B) %+.2fs, node3(C) %+.2fs, i.e. %+.1f / %+.1f ms per second\n", b1 - bi, c1 - ci, (b1 - bi) * 1000 / s, (c1 - ci) * 1000 / s
}'
for ((i = 1; i <= NODES; i++)); do
  e=$(grep -cE 'ERROR|panicked' "$TMP/node$i.log" || true)
  [[ $e == 0 ]] || warn "node$i log has $e ERROR/panic lines, first: $(grep -m1 -E 'ERROR|panicked' "$TMP/node$i.log" | cut -c1-300)"
done
