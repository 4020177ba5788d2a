#!/usr/bin/env python3
"""Cold-start timer for `warden serve` (standard library only).

Each run picks a free port, spawns `BIN serve --listen 127.0.0.1:PORT
--database-url URL` in DIR with RUST_LOG=warn, and polls GET /healthz in a
tight loop (a new TCP connection every --interval seconds, 0.2 ms by default)
until a 200 arrives. The time is measured from just before the spawn
(time.perf_counter(), so it includes fork+exec) to the moment the 200 status
line is read. The server is then stopped with SIGTERM (SIGKILL after
--stop-timeout) and waited for before the next run.

With --prepare, one extra start comes first, reported as prepare_ms and not
counted in min/median/max: on a new database it creates the secrets file and
applies the migrations, so that the measured runs all start on an existing,
migrated database with the same secrets file.

Output on stdout, one key=value a line:
  prepare_ms=...            (with --prepare)
  run_ms=...                (one line per measured run)
  runs=N min_ms=... median_ms=... max_ms=...   (one key=value a line)
  poll_gap_ms=...           mean time between two connection attempts
  spawn_ms=...              median time spent in Popen (fork+exec), which
                            is part of every run_ms
Progress and errors go to stderr. The exit status is non-zero if a start
fails (the server exits, or /healthz does not answer 200 within --timeout).
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time


class StartFailed(Exception):
    pass


def free_port(used):
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in used:
            used.add(port)
            return port
    raise StartFailed("could not find a free port not used by an earlier run")


def healthz_ok(port, request):
    """One attempt: True once GET /healthz answers 200, False if refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(2.0)
        try:
            s.connect(("127.0.0.1", port))
        except (ConnectionRefusedError, ConnectionResetError, socket.timeout):
            return False
        try:
            s.sendall(request)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(256)
                if not chunk:
                    return False
                data += chunk
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            return False
        parts = data.split(b"\r\n", 1)[0].split()
        return len(parts) >= 2 and parts[1] == b"200"
    finally:
        s.close()


def stop(proc, stop_timeout):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=stop_timeout)
    except subprocess.TimeoutExpired:
        print(f"coldstart: server (pid {proc.pid}) did not stop within "
              f"{stop_timeout}s; sending SIGKILL", file=sys.stderr)
        proc.kill()
        proc.wait()


def one_start(args, port, log):
    """Starts the server; returns (ms to the first 200, attempts, mean ms
    between two attempts or None, ms spent in Popen)."""
    cmd = [args.bin, "serve", "--listen", f"127.0.0.1:{port}",
           "--database-url", args.database_url]
    env = dict(os.environ, RUST_LOG="warn")
    request = (f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               "Connection: close\r\n\r\n").encode()
    log.write(f"--- coldstart: {' '.join(cmd)}\n".encode())
    log.flush()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=args.dir, env=env, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log)
    # Popen returns once the child has exec'd (or failed to).
    spawn_ms = (time.perf_counter() - t0) * 1000.0
    try:
        attempts = 0
        deadline = t0 + args.timeout
        first = last = next_at = None
        while True:
            attempts += 1
            last = time.perf_counter()
            if first is None:
                first = next_at = last
            if healthz_ok(port, request):
                t1 = time.perf_counter()
                break
            status = proc.poll()
            if status is not None:
                raise StartFailed(f"the server exited during start-up (status {status})")
            now = time.perf_counter()
            if now > deadline:
                raise StartFailed(f"/healthz did not answer 200 within {args.timeout}s")
            # Attempts paced on a fixed schedule: time.sleep() overshoots
            # by ~0.1 ms, so the next attempt comes early to make up for it
            # (but no burst after a long stall).
            next_at += args.interval
            delay = next_at - now
            if delay > 0:
                time.sleep(delay)
            elif delay < -args.interval:
                next_at = now
        gap = (last - first) * 1000.0 / (attempts - 1) if attempts > 1 else None
        return (t1 - t0) * 1000.0, attempts, gap, spawn_ms
    finally:
        stop(proc, args.stop_timeout)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--bin", required=True, help="the warden binary")
    p.add_argument("--dir", required=True, help="working directory (holds .warden/secrets.json)")
    p.add_argument("--database-url", required=True)
    p.add_argument("--runs", type=int, default=7, help="measured starts (default 7)")
    p.add_argument("--prepare", action="store_true",
                   help="one start before the measured ones (creates and migrates the database)")
    p.add_argument("--log", required=True, help="file the server output is appended to")
    p.add_argument("--interval", type=float, default=0.0002,
                   help="seconds between connection attempts (default 0.0002)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each start")
    p.add_argument("--stop-timeout", type=float, default=10.0)
    args = p.parse_args()
    if args.runs < 1:
        p.error("--runs must be at least 1")

    # SIGTERM from the caller: unwind so that the `finally` stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    used = set()
    times = []
    gaps = []
    spawns = []
    with open(args.log, "ab") as log:
        try:
            if args.prepare:
                ms, _, _, _ = one_start(args, free_port(used), log)
                print(f"coldstart: first start (creates/migrates) {ms:.2f} ms", file=sys.stderr)
                print(f"prepare_ms={ms:.2f}")
            for i in range(args.runs):
                ms, attempts, gap, spawn_ms = one_start(args, free_port(used), log)
                times.append(ms)
                spawns.append(spawn_ms)
                if gap is not None:
                    gaps.append(gap)
                print(f"coldstart: run {i + 1}/{args.runs} {ms:.2f} ms "
                      f"({attempts} attempts)", file=sys.stderr)
                print(f"run_ms={ms:.2f}")
        except StartFailed as e:
            print(f"coldstart: {e}; server output in {args.log}", file=sys.stderr)
            return 1
    print(f"runs={len(times)}")
    print(f"min_ms={min(times):.2f}")
    print(f"median_ms={statistics.median(times):.2f}")
    print(f"max_ms={max(times):.2f}")
    print(f"poll_gap_ms={statistics.mean(gaps):.3f}" if gaps else "poll_gap_ms=n/a")
    print(f"spawn_ms={statistics.median(spawns):.2f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: the server was stopped on the way out
        sys.exit(130)
