"""A local OTLP/HTTP trace receiver for bench/telemetry.sh: accepts
POST /v1/traces (protobuf), answers 200, and prints a running count of
requests and bytes on stdout after each request. It does not decode: the
benchmark measures the server's cost of exporting, and the decoding is
tested by the integration tests' receiver (opentelemetry-proto).

Usage: python3 otlp_sink.py PORT
"""

import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

requests = 0
received = 0


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        global requests, received
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        requests += 1
        received += length
        ok = self.path == "/v1/traces"
        self.send_response(200 if ok else 404)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
        print(f"requests={requests} bytes={received}", flush=True)

    def log_message(self, *args):
        pass


def stop(*_):
    print(f"requests={requests} bytes={received}", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
