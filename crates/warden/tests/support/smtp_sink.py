#!/usr/bin/env python3
"""A tiny SMTP sink for Warden's integration tests.

Usage:

    python3 smtp_sink.py --port 0 --dir <folder>

Binds 127.0.0.1 on --port (0 = pick a free port) and, once it accepts
connections, prints exactly one line `LISTENING <port>` to stdout (flushed).
Nothing else is ever printed to stdout; diagnostics go to stderr.

Every message received is stored in <folder> as a pair of files, numbered
1, 2, 3, ... in the order the messages were accepted:

    <n>.json  {"mail_from": "a@b", "rcpt_tos": ["c@d", ...],
               "auth_mechanism": "PLAIN" | "LOGIN" | null,
               "auth_login": "user" | null}
    <n>.eml   the message exactly as received in DATA (RFC 5322 bytes with
              CRLF line endings, SMTP dot-stuffing removed)

Both are written atomically (temp name, then rename), the .json first and the
.eml last, so a reader that sees <n>.eml can rely on <n>.json being complete.

Plain SMTP only (no STARTTLS). AUTH PLAIN and AUTH LOGIN are advertised and
any credentials are accepted, but AUTH is optional.

Exits when stdin reaches EOF (the parent closed it or died), or on
SIGTERM/SIGINT. Exits 2 with a message on stderr if aiosmtpd is missing.
"""

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
import threading


def parse_args():
    ap = argparse.ArgumentParser(description="SMTP sink for tests")
    ap.add_argument("--port", type=int, default=0, help="port to bind (0 = any free port)")
    ap.add_argument("--dir", required=True, help="folder to write received messages to")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    return ap.parse_args()


def write_atomic(folder, name, data):
    tmp = os.path.join(folder, ".tmp-" + name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, os.path.join(folder, name))


def text(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


class Sink:
    def __init__(self, folder):
        self.folder = folder
        # Continue numbering after whatever the folder already holds.
        existing = [int(m.group(1)) for m in
                    (re.fullmatch(r"(\d+)\.eml", f) for f in os.listdir(folder)) if m]
        self.count = max(existing, default=0)

    async def handle_DATA(self, server, session, envelope):
        # Runs on the event loop thread: numbering needs no lock.
        self.count += 1
        n = self.count
        auth = session.auth_data if session.authenticated else None
        meta = {
            "mail_from": text(envelope.mail_from),
            "rcpt_tos": [text(r) for r in envelope.rcpt_tos],
            "auth_mechanism": getattr(auth, "mechanism", None),
            "auth_login": text(getattr(auth, "login", None)),
        }
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content if isinstance(envelope.content, bytes) else b""
        write_atomic(self.folder, f"{n}.json", json.dumps(meta).encode("utf-8"))
        write_atomic(self.folder, f"{n}.eml", raw)
        return "250 OK: message accepted"


class Auth:
    """What the authenticator records about an AUTH exchange."""

    def __init__(self, mechanism, login):
        self.mechanism = mechanism
        self.login = login


def accept_any(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=True, auth_data=Auth(mechanism, getattr(auth_data, "login", None)))


async def serve(args):
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin():
        # os.read on the raw descriptor: a daemon thread blocked inside
        # sys.stdin's buffered reader would abort interpreter shutdown.
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        loop.call_soon_threadsafe(stop.set)

    if sys.stdin is not None:
        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    sink = Sink(args.dir)

    def factory():
        return SMTP(
            sink,
            hostname="smtp-sink.test",  # avoids a slow getfqdn() lookup
            decode_data=False,
            enable_SMTPUTF8=True,
            auth_require_tls=False,
            auth_required=False,
            authenticator=accept_any,
        )

    server = await loop.create_server(factory, host=args.host, port=args.port)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"LISTENING {port}\n")
    sys.stdout.flush()

    await stop.wait()
    server.close()


def main():
    args = parse_args()
    try:
        import aiosmtpd.smtp  # noqa: F401
    except ImportError as e:
        sys.stderr.write(
            f"smtp_sink.py: the Python package aiosmtpd is not importable ({e}).\n"
            f"Install it with: pip install aiosmtpd  (interpreter: {sys.executable})\n"
        )
        sys.stderr.flush()
        sys.exit(2)
    # aiosmtpd itself sets the deprecated Session.login_data on every AUTH
    # and logs a warning about it; keep stderr for real problems.
    logging.basicConfig(level=logging.WARNING, format="smtp_sink.py: %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").addFilter(
        lambda record: "login_data is deprecated" not in record.getMessage())
    os.makedirs(args.dir, exist_ok=True)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
