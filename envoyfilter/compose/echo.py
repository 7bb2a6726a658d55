"""A tiny HTTP echo server standing in for one version of a service.

Answers every request with JSON naming its version and the headers it received, so you
can see which version served you and what the gateway forwarded (x-canary-version,
baggage, cookies):

    {"version": "v2", "method": "GET", "path": "/", "headers": {"x-canary-version": "v2", ...}}

VERSION and PORT come from the environment (defaults v1 and 8080). Standard library only.
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("VERSION", "v1")
PORT = int(os.environ.get("PORT", "8080"))


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "canary-echo"
    sys_version = ""

    def answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        received: dict = {}
        for name, value in self.headers.items():
            key = name.lower()
            if key in received:
                previous = received[key]
                received[key] = (previous if isinstance(previous, list) else [previous]) + [value]
            else:
                received[key] = value
        body = json.dumps({"version": VERSION, "method": self.command, "path": self.path,
                           "headers": received}, indent=2).encode() + b"\n"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("x-served-by", VERSION)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = answer

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        print(f"{VERSION} {self.address_string()} {format % args}", flush=True)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", PORT), Echo).serve_forever()
