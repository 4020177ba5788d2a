#!/usr/bin/env python3
"""The load and the measurements of deploy/check.sh (Python 3, standard library only).

Through the load balancer at --lb it runs a steady load of
  - GET /profile with existing sessions (--profile-workers threads, each at
    --profile-rate requests/s, each on its own keep-alive connection), and
  - POST /auth/signin (--signin-workers threads at --signin-rate/s each),
records every request (start, end, kind, status or error), and after
--warmup seconds sends SIGKILL to --kill-pid. It then polls HAProxy's stats
socket every 10 ms until HAProxy reports the killed server (--kill-server,
"backend/server") DOWN, keeps the load going for --after more seconds, and
stops. Finally it checks every session it knows of (the --sessions file and
those its sign-ins created) with GET /profile through the load balancer.

It prints a report and writes every request to --requests-csv. Exit status:
0 when HAProxy noticed the kill, no request started after that moment
failed and no session was lost; 1 otherwise; 2 on a usage or setup error.
"""

import argparse
import csv
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse


def now():
    return time.time()


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows = []  # (t_start, t_end, kind, status, error)
        self.tokens = []  # (t_obtained, token) from successful sign-ins

    def add(self, row):
        with self.lock:
            self.rows.append(row)

    def token(self, t, tok):
        with self.lock:
            self.tokens.append((t, tok))


class Client:
    """One keep-alive connection to the load balancer, reopened after errors."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
            data = resp.read()
            if resp.getheader("connection", "").lower() == "close":
                self.close()
            return resp.status, data
        except Exception:
            self.close()
            raise

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None


def paced(rate, stop, fn):
    """Calls fn() `rate` times a second (on a fixed schedule) until stop is set."""
    gap = 1.0 / rate
    nxt = now()
    while not stop.is_set():
        fn()
        nxt += gap
        delay = nxt - now()
        if delay > 0:
            stop.wait(delay)
        else:
            nxt = now()  # behind: don't burst to catch up


def profile_worker(args, host, port, tokens, offset, rec, stop):
    c = Client(host, port, args.timeout)
    i = [offset]

    def one():
        tok = tokens[i[0] % len(tokens)]
        i[0] += 1
        t0 = now()
        try:
            status, _ = c.request("GET", "/profile", headers={"Authorization": "Bearer " + tok})
            rec.add((t0, now(), "profile", status, ""))
        except Exception as e:  # noqa: BLE001 - every failure is recorded
            rec.add((t0, now(), "profile", 0, type(e).__name__ + ": " + str(e)[:100]))

    paced(args.profile_rate, stop, one)
    c.close()


def signin_worker(args, host, port, users, offset, rec, stop):
    c = Client(host, port, args.timeout)
    i = [offset]

    def one():
        email, password = users[i[0] % len(users)]
        i[0] += 1
        body = json.dumps({"email": email, "password": password})
        t0 = now()
        try:
            status, data = c.request(
                "POST", "/auth/signin", body=body, headers={"Content-Type": "application/json"}
            )
            t1 = now()
            rec.add((t0, t1, "signin", status, ""))
            if status == 200:
                rec.token(t1, json.loads(data)["session"]["token"])
        except Exception as e:  # noqa: BLE001
            rec.add((t0, now(), "signin", 0, type(e).__name__ + ": " + str(e)[:100]))

    paced(args.signin_rate, stop, one)
    c.close()


def haproxy_stat(sock_path):
    """`show stat` from HAProxy's runtime API, as a list of dicts."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(sock_path)
    s.sendall(b"show stat\n")
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            break
        chunks.append(b)
    s.close()
    text = b"".join(chunks).decode()
    lines = [l for l in text.splitlines() if l.strip()]
    header = lines[0].lstrip("# ").split(",")
    return [dict(zip(header, l.split(","))) for l in lines[1:]]


def server_row(rows, backend, server):
    for r in rows:
        if r.get("pxname") == backend and r.get("svname") == server:
            return r
    return None


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def summarize(label, rows):
    n = len(rows)
    bad = [r for r in rows if not ok(r)]
    lat = [(r[1] - r[0]) * 1000 for r in rows]
    kinds = {}
    for r in rows:
        k = kinds.setdefault(r[2], [0, 0])
        k[0] += 1
        if not ok(r):
            k[1] += 1
    by_kind = ", ".join(f"{k} {v[0]} ({v[1]} failed)" for k, v in sorted(kinds.items()))
    print(
        f"  {label:<34} {n:>6} requests, {len(bad):>4} failed"
        + (f"; {by_kind}" if by_kind else "")
        + (f"; latency p50/p99/max = {pct(lat, 50):.1f}/{pct(lat, 99):.1f}/{max(lat):.1f} ms" if lat else "")
    )
    return bad


def ok(row):
    return row[3] == 200


def describe_failures(bad, t_ref, limit=10):
    kinds = {}
    for r in bad:
        key = (r[2], r[3] if r[3] else r[4].split(":")[0])
        kinds[key] = kinds.get(key, 0) + 1
    for (kind, what), n in sorted(kinds.items(), key=lambda x: -x[1]):
        print(f"      {n} x {kind}: {what if what != 0 else '?'}")
    for r in bad[:limit]:
        print(
            f"      at kill{r[0] - t_ref:+.3f}s ({(r[1] - r[0]) * 1000:.0f} ms): {r[2]} "
            + (f"HTTP {r[3]}" if r[3] else r[4])
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lb", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--sessions", required=True, help="JSON: [{token, node}] created before the load")
    ap.add_argument("--users", required=True, help="JSON: [{email, password}] for the sign-in load")
    ap.add_argument("--kill-pid", type=int, required=True)
    ap.add_argument("--signal", choices=["KILL", "STOP"], default="KILL",
                    help="KILL: the node dies (its port refuses); STOP: it hangs (connections are accepted, never answered)")
    ap.add_argument("--kill-server", required=True, help="HAProxy backend/server of that pid")
    ap.add_argument("--stats-socket", required=True)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--after", type=float, default=10)
    ap.add_argument("--detect-timeout", type=float, default=15)
    ap.add_argument("--profile-workers", type=int, default=4)
    ap.add_argument("--profile-rate", type=float, default=50)
    ap.add_argument("--signin-workers", type=int, default=2)
    ap.add_argument("--signin-rate", type=float, default=5)
    ap.add_argument("--timeout", type=float, default=15)
    ap.add_argument("--requests-csv", required=True)
    args = ap.parse_args()

    u = urllib.parse.urlsplit(args.lb)
    host, port = u.hostname, u.port or 80
    backend, server = args.kill_server.split("/", 1)
    sessions = json.load(open(args.sessions))
    users = [(x["email"], x["password"]) for x in json.load(open(args.users))]
    tokens = [s["token"] for s in sessions]
    if not tokens or not users:
        print("no sessions or users to load with", file=sys.stderr)
        return 2

    def stat_of_server():
        r = server_row(haproxy_stat(args.stats_socket), backend, server)
        if r is None:
            raise SystemExit(f"HAProxy has no server {args.kill_server}")
        return r

    before = stat_of_server()
    if not before["status"].startswith("UP"):
        print(f"{args.kill_server} is {before['status']} before the kill, not UP", file=sys.stderr)
        return 2
    be_before = server_row(haproxy_stat(args.stats_socket), backend, "BACKEND")

    rec = Recorder()
    stop = threading.Event()
    threads = []
    for w in range(args.profile_workers):
        threads.append(
            threading.Thread(target=profile_worker, args=(args, host, port, tokens, w * 7, rec, stop))
        )
    for w in range(args.signin_workers):
        threads.append(threading.Thread(target=signin_worker, args=(args, host, port, users, w, rec, stop)))
    t_load = now()
    for t in threads:
        t.start()

    time.sleep(args.warmup)
    t_kill = now()
    os.kill(args.kill_pid, signal.SIGKILL if args.signal == "KILL" else signal.SIGSTOP)
    t_down = None
    seen = []  # (t, status) transitions as polled
    while now() - t_kill < args.detect_timeout:
        st = stat_of_server()["status"]
        if not seen or seen[-1][1] != st:
            seen.append((now(), st))
        if st.startswith("DOWN"):
            t_down = now()
            break
        time.sleep(0.01)
    time.sleep(args.after)
    stop.set()
    for t in threads:
        t.join()
    t_end = now()
    be_after = server_row(haproxy_stat(args.stats_socket), backend, "BACKEND")

    rows = sorted(rec.rows)
    with open(args.requests_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["start_s_from_kill", "end_s_from_kill", "kind", "status", "error"])
        for r in rows:
            w.writerow([f"{r[0] - t_kill:.6f}", f"{r[1] - t_kill:.6f}", r[2], r[3], r[4]])

    print(f"load: {len(rows)} requests in {t_end - t_load:.1f} s "
          f"({args.profile_workers} x {args.profile_rate:g}/s GET /profile over {len(tokens)} sessions, "
          f"{args.signin_workers} x {args.signin_rate:g}/s POST /auth/signin)")
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t_kill)) + f".{int(t_kill % 1 * 1e6):06d}+00:00"
    print(f"kill -{args.signal} of {args.kill_server} (pid {args.kill_pid}) at {iso}, after {t_kill - t_load:.1f} s of load")
    for t, st in seen:
        print(f"  stats socket: {args.kill_server} status {st!r} at kill+{t - t_kill:.3f}s")
    if t_down is None:
        print(f"FAIL: HAProxy did not mark {args.kill_server} DOWN within {args.detect_timeout:g} s")
        return 1
    detect = t_down - t_kill
    print(f"detection: HAProxy marked {args.kill_server} DOWN {detect:.3f} s after the kill "
          f"(stats socket polled every 10 ms)")
    print("requests (by start time):")
    pre = [r for r in rows if r[0] < t_kill]
    window = [r for r in rows if t_kill <= r[0] < t_down]
    post = [r for r in rows if r[0] >= t_down]
    bad_pre = summarize("before the kill", pre)
    bad_win = summarize("kill -> HAProxy marks it DOWN", window)
    bad_post = summarize("after HAProxy marked it DOWN", post)
    # Requests started before the kill that were still running at it.
    inflight = [r for r in rows if r[0] < t_kill <= r[1]]
    print(f"  ({len(inflight)} requests were in flight at the kill, "
          f"{sum(1 for r in inflight if not ok(r))} of them failed; counted in 'before the kill')")
    for label, bad in (("before the kill", bad_pre), ("between kill and detection", bad_win),
                       ("after detection", bad_post)):
        if bad:
            print(f"  failures {label}:")
            describe_failures(bad, t_kill)
    if be_before and be_after:
        print("HAProxy backend counters during the run: "
              f"retries {int(be_after['wretr'] or 0) - int(be_before['wretr'] or 0)}, "
              f"redispatches {int(be_after['wredis'] or 0) - int(be_before['wredis'] or 0)}, "
              f"connection errors {int(be_after['econ'] or 0) - int(be_before['econ'] or 0)}, "
              f"response errors {int(be_after['eresp'] or 0) - int(be_before['eresp'] or 0)}")

    # Every session known before the kill, and after it, checked through the LB.
    c = Client(host, port, args.timeout)
    checks = [(s["token"], "before the load, on " + s["node"], None) for s in sessions]
    checks += [(tok, "signed in during the load", t) for t, tok in rec.tokens]
    lost = {}
    total = {}
    for tok, origin, t in checks:
        group = origin if t is None else ("sign-ins before the kill" if t < t_kill else "sign-ins after the kill")
        total[group] = total.get(group, 0) + 1
        try:
            status, _ = c.request("GET", "/profile", headers={"Authorization": "Bearer " + tok})
        except Exception as e:  # noqa: BLE001
            status = f"{type(e).__name__}"
        if status != 200:
            lost.setdefault(group, []).append(status)
    c.close()
    print("sessions checked afterwards with GET /profile through HAProxy:")
    n_lost = 0
    for group in sorted(total):
        miss = lost.get(group, [])
        n_lost += len(miss)
        print(f"  {group:<36} {total[group]:>5} checked, {len(miss)} lost" + (f" ({miss[:5]})" if miss else ""))
    before_kill_lost = sum(len(v) for k, v in lost.items() if k != "sign-ins after the kill")
    n_before = sum(v for k, v in total.items() if k != "sign-ins after the kill")

    verdict_ok = not bad_post and n_lost == 0 and len(post) > 0
    print(
        f"RESULT: detection {detect:.3f} s; failed requests: {len(bad_pre)} before the kill, "
        f"{len(bad_win)} between kill and detection, {len(bad_post)} after detection (of {len(post)}); "
        f"sessions lost: {n_lost} of {sum(total.values())} ({before_kill_lost} of {n_before} created before the kill) -> "
        + ("PASS" if verdict_ok else "FAIL")
    )
    return 0 if verdict_ok else 1


if __name__ == "__main__":
    sys.exit(main())
