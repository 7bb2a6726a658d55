"""Loopback HTTP/1.1 upstreams that stand in for the versions of a service.

Every upstream answers any method with JSON describing what it received, so a test can
assert both *which version answered* and *which headers reached it* after the filter ran:

    {"version": "v2", "role": "echo", "method": "GET", "path": "/",
     "headers": {"x-canary-version": "v2", "cookie": ["a=1", "b=2"], ...}}

Header names are lower-cased; a header received once is a string, a repeated header is a
list of its values in arrival order (see `header_values`).

A request with `x-echo-status: NNN` is answered with that status (the same JSON), so a test
can make a version's upstream fail (Envoy's upstream_rq_5xx, test_status.py).

Roles:
- echo      the answer above.
- frontend  also calls the backend service through Envoy's internal listener, forwarding
            the tag header, and adds the backend's answer under "backend" (scenario S6:
            frontend vN must reach backend vN). With `forwarding` (the mesh tests), the
            first path segment names what the app forwards on that call instead:
            GET /baggage/... forwards only `baggage`, /traceparent/... only
            `traceparent`, and so on (see canary_e2e/mesh.py).
            With `forward_list_header`, a request carrying that header (a comma-separated
            list of names) forwards exactly those headers instead (test_sidecar.py).
            With `replica_ports`, a request carrying `replica_header: NAME` makes its
            backend call to port replica_ports[NAME] instead of `backend_port`: the test,
            not Envoy's load balancer, picks the waypoint replica of the second hop.
- shadow    the answer above, plus it records every request so a test can read what a
            mirrored copy carried (scenario S8). Recorded requests are readable in-process
            (`ShadowRecorder.requests()`) or over HTTP on GET /__shadow/requests.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHADOW_RECORD_PATH = "/__shadow/requests"
STATUS_HEADER = "x-echo-status"
# A frontend gives up on its backend call after this long and reports the error instead.
BACKEND_CALL_TIMEOUT_S = 5.0


def header_values(received: dict, name: str) -> list[str]:
    """All values of header `name` in an upstream's "headers" object ([] when absent)."""
    value = received.get(name.lower())
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _received_headers(message) -> dict:
    received: dict = {}
    for name, value in message.items():
        key = name.lower()
        if key in received:
            previous = received[key]
            received[key] = previous + [value] if isinstance(previous, list) else [previous, value]
        else:
            received[key] = value
    return received


class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: Envoy pools its upstream connections
    disable_nagle_algorithm = True  # headers and body go out in two writes; avoid 40 ms stalls
    server_version = "canary-echo"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass  # tests read what they need from the JSON answers, not from stderr

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self):
        body = self._read_body()
        upstream: Upstream = self.server.upstream  # type: ignore[attr-defined]
        if upstream.role == "shadow" and self.path == SHADOW_RECORD_PATH:
            self._send_json(200, {"requests": upstream.shadow.requests()})
            return
        answer = {
            "version": upstream.version,
            "role": upstream.role,
            "service": upstream.service,
            "method": self.command,
            "path": self.path,
            "headers": _received_headers(self.headers),
            "body_bytes": len(body),
        }
        if upstream.role == "shadow":
            upstream.shadow.record(answer)
        if upstream.role == "frontend":
            answer["backend"] = upstream.call_backend(answer["headers"], self.path)
        status = self.headers.get(STATUS_HEADER, "200")
        self._send_json(int(status) if status.isdigit() else 200, answer)

    def _send_json(self, status: int, payload: dict):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _answer


class ShadowRecorder:
    """Thread-safe list of the requests a shadow upstream received."""

    def __init__(self):
        self._lock = threading.Lock()
        self._requests: list[dict] = []

    def record(self, answer: dict):
        with self._lock:
            self._requests.append(answer)

    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._requests)


class Upstream:
    """One upstream HTTP/1.1 server on 127.0.0.1 (a free port chosen by the OS)."""

    def __init__(self, version: str, role: str = "echo", service: str = "app",
                 backend_port: int | None = None, backend_authority: str = "backend",
                 forwarded_headers: tuple[str, ...] = ("x-canary-version",),
                 forwarding: dict[str, tuple[str, ...]] | None = None,
                 forward_list_header: str | None = None,
                 replica_header: str | None = None, replica_ports: dict[str, int] | None = None):
        if role not in ("echo", "frontend", "shadow"):
            raise ValueError(f"unknown upstream role {role!r}")
        if role == "frontend" and backend_port is None:
            raise ValueError("a frontend needs the port of the Envoy listener that routes to the backend")
        self.version = version
        self.role = role
        self.service = service
        self.backend_port = backend_port
        self.backend_authority = backend_authority
        self.forwarded_headers = tuple(h.lower() for h in forwarded_headers)
        # {first path segment: headers forwarded on that request's backend call}
        self.forwarding = {segment: tuple(h.lower() for h in headers)
                           for segment, headers in (forwarding or {}).items()}
        self.forward_list_header = forward_list_header.lower() if forward_list_header else None
        self.replica_header = replica_header.lower() if replica_header else None
        self.replica_ports = dict(replica_ports or {})
        self.shadow = ShadowRecorder()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
        self._server.daemon_threads = True
        self._server.upstream = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=f"upstream-{service}-{version}", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def headers_to_forward(self, path: str) -> tuple[str, ...]:
        """The request headers this app copies onto its backend call for `path`."""
        if not self.forwarding:
            return self.forwarded_headers
        segment = path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        if segment not in self.forwarding:
            raise ValueError(f"frontend {self.version}: no forwarding behaviour for path {path!r}")
        return self.forwarding[segment]

    def call_backend(self, received: dict, path: str = "/") -> dict:
        """Frontend role: call the backend through Envoy, forwarding the tag header (or
        what `forwarding` says for this path)."""
        headers = {"host": self.backend_authority}
        try:
            forwarded = self.headers_to_forward(path)
        except ValueError as exc:
            return {"error": str(exc)}
        if self.forward_list_header and self.forward_list_header in received:
            listed = ",".join(header_values(received, self.forward_list_header))
            forwarded = tuple(n.strip().lower() for n in listed.split(",") if n.strip())
        for name in forwarded:
            values = header_values(received, name)
            if values:
                headers[name] = ", ".join(values)
        port = self.backend_port
        if self.replica_header and self.replica_header in received:
            replica = ",".join(header_values(received, self.replica_header))
            if replica not in self.replica_ports:
                return {"error": f"frontend {self.version}: no replica {replica!r}"}
            port = self.replica_ports[replica]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=BACKEND_CALL_TIMEOUT_S)
        try:
            # With `forwarding`, the call keeps the path, so the next app down a chain
            # forwards the same way.
            conn.request("GET", path if self.forwarding else "/backend-call", headers=headers)
            response = conn.getresponse()
            data = response.read()
            try:
                return json.loads(data)
            except ValueError:
                return {"error": f"backend answered {response.status} with non-JSON body {data[:200]!r}"}
        except OSError as exc:
            return {"error": f"backend call failed: {exc}"}
        finally:
            conn.close()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
