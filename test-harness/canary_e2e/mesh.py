"""The mesh topology of SPEC §7–§8 under real Envoys: a gateway and a workload's sidecar.

    client ─► gateway Envoy (canary-tagger, mode "gateway")
                 route: header <tag> exact vN → cluster frontend-vN, otherwise frontend-v1
                 (the cluster speaks the client's protocol: HTTP/1.1 or h2c)
           ─► sidecar Envoy: one process, canary-tagger in mode "sidecar" on every listener,
              one vm_id, so inbound and outbound share one trace table (proxy-wasm shared data)
                 inbound-vN   traffic_direction INBOUND  ─► frontend app vN
                 inbound-sink traffic_direction INBOUND  ─► direct 200 (an app that calls
                              nobody: lets a test fill the trace table without an app)
                 outbound     traffic_direction OUTBOUND ─► route: header <tag> exact vN →
                              backend vN, otherwise backend v1 (routed ONLY on the tag)
           frontend app vN calls "backend" through the outbound listener, copying only the
           request headers its behaviour forwards (the first path segment picks it):

                 /tag/...           x-canary-version      (an app changed for us)
                 /baggage/...       baggage               (OpenTelemetry SDKs)
                 /traceparent/...   traceparent           (W3C trace context)
                 /x-b3-traceid/...  x-b3-traceid          (Zipkin B3)
                 /x-request-id/...  x-request-id          (what Istio asks apps to forward)
                 /nothing/...       nothing

One sidecar stands in front of all three frontend versions. In Istio each pod has its own
sidecar, which only ever sees one version inbound; sharing one table between versions is
the harder case: any mixup between concurrent requests would show as a crossing.

Sidecar listeners run with `use_remote_address: false`, as Istio's sidecars do, so Envoy
keeps the `x-request-id` the gateway generated instead of minting a new one per hop.

AmbientUnderTest is the same with waypoint replicas instead of a sidecar (SPEC §12):

    client ─► gateway Envoy ─► waypoint replica A (inbound-vN) ─► frontend app vN
           frontend app vN ─► replica A or B (outbound, the request's `x-test-replica`)
                           ─► backend vN (routed ONLY on the tag)

Replicas are SidecarUnderTest(waypoint=True): the same listeners without
traffic_direction, each replica its own Envoy and so its own trace table. B has no
frontends: it only ever sees second hops, never the tagged first one.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from pathlib import Path
from typing import Iterable

import httpx
import yaml

from .envoy_process import (DEFAULT_TAG_HEADER, DEFAULT_VERSIONS, REQUEST_TIMEOUT_S,
                            STATS_TAGS, http_listener, WASM_MODULE, EnvoyStartupError, EnvoyUnderTest, Reply,
                            _blocking_client, static_cluster, free_port, require_wasm_module,
                            tag_routes, wasm_filter)
from .upstreams import Upstream

# What each frontend behaviour copies from its inbound request onto its backend call.
FORWARDING: dict[str, tuple[str, ...]] = {
    "tag": (DEFAULT_TAG_HEADER,),
    "baggage": ("baggage",),
    "traceparent": ("traceparent",),
    "x-b3-traceid": ("x-b3-traceid",),
    "x-request-id": ("x-request-id",),
    "nothing": (),
}
# A frontend request carrying this header names the waypoint replica of its backend call.
REPLICA_HEADER = "x-test-replica"

# A cluster speaking whatever protocol the downstream request used (HTTP/1.1 or HTTP/2),
# so an h2c client's request reaches the sidecar over HTTP/2 too.
DOWNSTREAM_PROTOCOL = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    "use_downstream_protocol_config": {"http_protocol_options": {}, "http2_protocol_options": {}},
}}


def traceparent(trace_id: str, span_id: str = "00f067aa0ba902b7") -> str:
    """A W3C traceparent (version 00, sampled) carrying `trace_id` (32 lower-case hex)."""
    return f"00-{trace_id}-{span_id}-01"


def new_trace_id() -> str:
    return os.urandom(16).hex()


def _choose_distinct_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


_THREAD = threading.local()


def thread_client(http2: bool) -> httpx.Client:
    """An HTTP client of this thread's own. Tests send from many threads at once; sharing
    one HTTP/2 connection between threads stalled a request now and then (httpcore), which
    is not what these tests are about. All clients are closed by close_thread_clients()."""
    clients = getattr(_THREAD, "clients", None)
    if clients is None:
        clients = _THREAD.clients = {}
    if http2 not in clients:
        clients[http2] = _blocking_client(http2)
        with _ALL_CLIENTS_LOCK:
            _ALL_CLIENTS.append(clients[http2])
    return clients[http2]


_ALL_CLIENTS: list[httpx.Client] = []
_ALL_CLIENTS_LOCK = threading.Lock()


def close_thread_clients():
    with _ALL_CLIENTS_LOCK:
        for client in _ALL_CLIENTS:
            client.close()
        _ALL_CLIENTS.clear()
    _THREAD.clients = None


def send(port: int, path: str, headers=None, http2: bool = False, authority: str | None = None,
         state=lambda: "") -> Reply:
    """GET 127.0.0.1:port/path with exactly `headers` (a dict or (name, value) pairs)."""
    header_list = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    if authority is not None and not any(n.lower() == "host" for n, _ in header_list):
        header_list.append(("host", authority))
    try:
        response = thread_client(http2).get(f"http://127.0.0.1:{port}{path}", headers=header_list)
    except httpx.TransportError as exc:
        raise AssertionError(f"GET {path} to port {port} failed: {exc!r}\n{state()}") from exc
    try:
        body = response.json()
    except ValueError:
        body = {"non_json_body": response.text}
    return Reply(response.status_code, body, response.headers, response.http_version)


class SidecarUnderTest(EnvoyUnderTest):
    """The sidecar Envoy of the module docstring, with its backends and (optionally) its
    frontend apps. `url` (and so `request()`) is the OUTBOUND listener: a request sent
    there is what an app's outgoing call looks like to its sidecar."""

    def __init__(self, plugin_config: dict, *, frontends: bool = True, concurrency: int = 2,
                 app_versions: Iterable[str] | None = None, app_service: str = "frontend",
                 next_hop: dict[str, int] | None = None, backend_versions: Iterable[str] | None = None,
                 backend_service: str = "backend", waypoint: bool = False,
                 replica: str = "a", peers: dict[str, int] | None = None,
                 forwarding: dict[str, tuple[str, ...]] | None = None, **options):
        """frontends: run apps named `app_service` (one per version in `app_versions`,
        default every version) behind INBOUND listeners. next_hop: {version: port} the
        OUTBOUND listener routes to (another sidecar's inbound listeners); otherwise echo
        upstreams named `backend_service`, one per version in `backend_versions` (default
        every version). waypoint: listeners without traffic_direction (an ambient
        waypoint replica named `replica`); peers: {name: outbound port} of the other
        replicas, which a frontend call goes to when its request says `x-test-replica:
        NAME`. forwarding: the apps' behaviours per first path segment (FORWARDING)."""
        super().__init__(plugin_config, filter_mode="wasm", concurrency=concurrency, **options)
        self.with_frontends = frontends
        self.app_versions = tuple(app_versions) if app_versions is not None else self.versions
        self.app_service = app_service
        self.next_hop = dict(next_hop) if next_hop is not None else None
        self.backend_versions = tuple(backend_versions) if backend_versions is not None else self.versions
        self.backend_service = backend_service
        self.waypoint = waypoint
        self.replica = replica
        self.peers = dict(peers or {})
        self.forwarding = dict(forwarding if forwarding is not None else FORWARDING)
        self.default_version = plugin_config.get("default_version", self.default_route_version)
        self.inbound_ports: dict[str, int] = {}
        self.sink_port = 0

    @property
    def outbound_url(self) -> str:
        return self.url

    @property
    def sink_url(self) -> str:
        return f"http://127.0.0.1:{self.sink_port}"

    def _choose_ports(self, attempt: int):
        taken = set((self.next_hop or {}).values()) | set(self.peers.values())
        ports: list[int] = []
        while len(ports) < 3 + (len(self.app_versions) if self.with_frontends else 0):
            port = free_port()
            if port not in taken and port not in ports:
                ports.append(port)
        self.admin_port, self.edge_port, self.sink_port = ports[:3]
        self.internal_port = 0
        self.inbound_ports = dict(zip(self.app_versions, ports[3:])) if self.with_frontends else {}

    def _start_upstreams(self):
        if self.next_hop is None:
            self.backends = {v: Upstream(v, service=self.backend_service) for v in self.backend_versions}
        if self.with_frontends:
            self.upstreams = {v: Upstream(v, role="frontend", service=self.app_service,
                                          backend_port=self.edge_port, forwarding=self.forwarding,
                                          replica_header=REPLICA_HEADER,
                                          replica_ports={self.replica: self.edge_port, **self.peers})
                              for v in self.app_versions}
        else:
            self.upstreams = {}

    def bootstrap(self) -> dict:
        module = require_wasm_module(self.wasm_path)
        sidecar_filter = wasm_filter(self.plugin_config, module)  # same vm_id everywhere
        next_ports = self.next_hop if self.next_hop is not None else \
            {v: u.port for v, u in self.backends.items()}
        clusters = [static_cluster(f"backend-{v}", port) for v, port in next_ports.items()]
        if self.next_hop is not None:
            for cluster in clusters:  # another sidecar: keep the caller's protocol
                cluster["typed_extension_protocol_options"] = DOWNSTREAM_PROTOCOL
        # A service lacking some versions: those take the default route, like the recipes'.
        default = self.default_version if self.default_version in next_ports else next(iter(next_ports))
        listeners = [
            http_listener("outbound", self.edge_port, [sidecar_filter],
                          tag_routes(self.tag_header, list(next_ports), "backend-", default),
                          direction=self._direction("OUTBOUND")),
            http_listener("inbound-sink", self.sink_port, [sidecar_filter],
                          [{"name": "sink", "match": {"prefix": "/"},
                            "direct_response": {"status": 200}}],
                          direction=self._direction("INBOUND")),
        ]
        for version, port in self.inbound_ports.items():
            listeners.append(http_listener(
                f"inbound-{version}", port, [sidecar_filter],
                [{"name": "app", "match": {"prefix": "/"},
                  "route": {"cluster": f"frontend-{version}", "timeout": "10s"}}],
                direction=self._direction("INBOUND")))
            clusters.append(static_cluster(f"frontend-{version}", self.upstreams[version].port))
        return {
            "admin": {"address": {"socket_address": {"address": "127.0.0.1",
                                                     "port_value": self.admin_port}}},
            "static_resources": {"listeners": listeners, "clusters": clusters},
            **(yaml.safe_load(STATS_TAGS.read_text()) if self.stats_tags else {}),
        }

    def _direction(self, direction: str) -> str | None:
        return None if self.waypoint else direction

    def write_config(self) -> Path:
        self.config_path.write_text(yaml.safe_dump(self.bootstrap(), sort_keys=False))
        return self.config_path

    # -- requests as the mesh sees them
    def inbound(self, path: str = "/", headers=None, http2: bool = False,
                version: str | None = None) -> Reply:
        """A request arriving at the workload: to frontend `version`'s inbound listener,
        or (version None) to the sink, which answers 200 without calling anything."""
        port = self.sink_port if version is None else self.inbound_ports[version]
        return self._send(port, path, headers, http2)

    def outbound(self, path: str = "/", headers=None, http2: bool = False) -> Reply:
        """An app's outgoing call to "backend": answered by the backend version routed on
        the tag the sidecar set."""
        return self._send(self.edge_port, path, headers, http2, authority="backend")

    def _send(self, port: int, path: str, headers, http2: bool, authority: str | None = None) -> Reply:
        return send(port, path, headers, http2, authority, state=self.state)

    def rss_kib(self) -> int:
        """The sidecar Envoy's resident set size (VmRSS in /proc/PID/status), in KiB."""
        if self.process is None or self.process.poll() is not None:
            raise AssertionError(f"no running sidecar Envoy to measure; {self.state()}")
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.MULTILINE)
        if match is None:
            raise AssertionError(f"no VmRSS line in /proc/{self.process.pid}/status")
        return int(match.group(1))

    def counters(self, prefix: str = "") -> dict[str, int]:
        """Envoy's counters whose name starts with `prefix` (admin /stats?format=json)."""
        stats = json.loads(self.admin_get("/stats?format=json&usedonly"))["stats"]
        return {s["name"]: s["value"] for s in stats
                if "value" in s and isinstance(s["value"], int) and s["name"].startswith(prefix)}


class GatewayUnderTest(EnvoyUnderTest):
    """The gateway Envoy: canary-tagger in gateway mode on the edge listener, routes on the
    tag to the sidecar's inbound listener of that version."""

    def __init__(self, plugin_config: dict, sidecar: SidecarUnderTest, **options):
        super().__init__(plugin_config, filter_mode="wasm", versions=sidecar.versions, **options)
        self.sidecar = sidecar
        self.default_version = plugin_config.get("default_version", self.default_route_version)

    def _choose_ports(self, attempt: int):
        taken = {self.sidecar.admin_port, self.sidecar.edge_port, self.sidecar.sink_port,
                 *self.sidecar.inbound_ports.values()}
        ports: list[int] = []
        while len(ports) < 2:
            port = free_port()
            if port not in taken and port not in ports:
                ports.append(port)
        self.admin_port, self.edge_port = ports
        self.internal_port = 0

    def _start_upstreams(self):
        self.upstreams, self.backends = {}, {}

    def bootstrap(self) -> dict:
        gateway_filter = wasm_filter(self.plugin_config, require_wasm_module(self.wasm_path))
        clusters = []
        for version, port in self.sidecar.inbound_ports.items():
            cluster = static_cluster(f"frontend-{version}", port)
            cluster["typed_extension_protocol_options"] = DOWNSTREAM_PROTOCOL
            clusters.append(cluster)
        versions = list(self.sidecar.inbound_ports)
        default = self.default_version if self.default_version in versions else versions[0]
        edge = http_listener("edge", self.edge_port, [gateway_filter],
                             tag_routes(self.tag_header, versions, "frontend-", default))
        return {
            "admin": {"address": {"socket_address": {"address": "127.0.0.1",
                                                     "port_value": self.admin_port}}},
            "static_resources": {"listeners": [edge], "clusters": clusters},
        }

    def write_config(self) -> Path:
        self.config_path.write_text(yaml.safe_dump(self.bootstrap(), sort_keys=False))
        return self.config_path


def start_gateway(config: dict, first_hop, options: dict, work_dir: Path) -> GatewayUnderTest:
    """The gateway Envoy in front of `first_hop` (a sidecar or waypoint replica), started,
    with the module and log level of `options`, its files under work_dir/gateway."""
    (work_dir / "gateway").mkdir(parents=True, exist_ok=True)
    gateway = GatewayUnderTest(config, first_hop, wasm_path=options["wasm_path"],
                               log_level=options["log_level"], work_dir=work_dir / "gateway")
    gateway.start()
    return gateway


class BehindTheGateway:
    """What MeshUnderTest and AmbientUnderTest share: the Envoys behind the first hop
    (`_start_hops`, which returns that hop) started first, then the gateway in front of it;
    all stopped together (the gateway first); `request()` goes to the gateway, as a client's
    would. `_hops()` names each Envoy behind the gateway for `state()`."""

    gateway_config: dict
    options: dict
    work_dir: Path
    gateway: GatewayUnderTest | None

    def _start_hops(self) -> SidecarUnderTest:
        raise NotImplementedError

    def _hops(self) -> list[tuple[str, SidecarUnderTest]]:
        raise NotImplementedError

    def start(self):
        try:
            first_hop = self._start_hops()
            self.gateway = start_gateway(self.gateway_config, first_hop, self.options, self.work_dir)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        close_thread_clients()
        for envoy in [self.gateway, *(envoy for _, envoy in self._hops())]:
            if envoy is not None:
                envoy.stop()

    def request(self, path: str, headers=None, http2: bool = False) -> Reply:
        return send(self.gateway.edge_port, path, headers, http2, state=self.state)

    def state(self) -> str:
        parts = [f"gateway: {self.gateway.state(20)}" if self.gateway else "gateway: not started"]
        parts += [f"{name}: {envoy.state(20)}" for name, envoy in self._hops()]
        return "\n".join(parts)


class MeshUnderTest(BehindTheGateway):
    """Gateway + sidecar(s) + apps, started and stopped together. `request()` goes to the
    gateway, as a client's would.

    Default: one service with a sidecar (frontend v1..vN) calling echo backends v1..vN.
    `services` = [(name, versions), ...] describes a longer chain instead, first service
    behind the gateway, last one a leaf echo service: every service but the last gets its
    own sidecar Envoy (the same `sidecar_config`), whose OUTBOUND listener routes on the tag
    to the next service's sidecar. `sidecar` is the first service's, `sidecars` all."""

    def __init__(self, gateway_config: dict, sidecar_config: dict, work_dir: Path, *,
                 versions: Iterable[str] = DEFAULT_VERSIONS,
                 services: list[tuple[str, Iterable[str]]] | None = None,
                 sidecar_concurrency: int = 2, wasm_path: Path = WASM_MODULE,
                 log_level: str = "info"):
        versions = tuple(versions)
        self.services = [(name, tuple(vs)) for name, vs in
                         (services or [("frontend", versions), ("backend", versions)])]
        self.work_dir = work_dir
        self.options = {"versions": versions, "concurrency": sidecar_concurrency,
                        "wasm_path": wasm_path, "log_level": log_level}
        self.sidecar_config = sidecar_config
        self.sidecars: list[SidecarUnderTest] = []
        self.gateway_config = gateway_config
        self.gateway: GatewayUnderTest | None = None

    @property
    def sidecar(self) -> SidecarUnderTest:
        return self.sidecars[0]

    def _start_hops(self) -> SidecarUnderTest:
        next_hop = None
        (leaf, leaf_versions) = self.services[-1]
        for index in reversed(range(len(self.services) - 1)):
            name, app_versions = self.services[index]
            (self.work_dir / name).mkdir(parents=True, exist_ok=True)
            sidecar = SidecarUnderTest(
                self.sidecar_config, app_versions=app_versions, app_service=name,
                next_hop=next_hop, backend_versions=leaf_versions, backend_service=leaf,
                work_dir=self.work_dir / name, **self.options)
            self.sidecars.insert(0, sidecar)
            sidecar.start()
            next_hop = sidecar.inbound_ports
        return self.sidecar

    def _hops(self) -> list[tuple[str, SidecarUnderTest]]:
        return [(f"sidecar of {s.app_service}", s) for s in self.sidecars]


class AmbientUnderTest(BehindTheGateway):
    """Gateway + waypoint replicas A and B + apps (module docstring), started and stopped
    together. `request()` goes to the gateway; a request with `x-test-replica: b` has its
    second hop served by replica B, otherwise by A."""

    def __init__(self, gateway_config: dict, waypoint_config: dict, work_dir: Path, *,
                 versions: Iterable[str] = DEFAULT_VERSIONS,
                 forwarding: dict[str, tuple[str, ...]] | None = None,
                 concurrency: int = 2, wasm_path: Path = WASM_MODULE, log_level: str = "info"):
        self.work_dir = work_dir
        self.gateway_config = gateway_config
        self.waypoint_config = waypoint_config
        self.options = {"versions": tuple(versions), "concurrency": concurrency,
                        "wasm_path": wasm_path, "log_level": log_level, "waypoint": True,
                        "forwarding": forwarding}
        self.replicas: dict[str, SidecarUnderTest] = {}
        self.gateway: GatewayUnderTest | None = None

    def _start_hops(self) -> SidecarUnderTest:
        for name in ("b", "a"):
            (self.work_dir / name).mkdir(parents=True, exist_ok=True)
        # B first: A's frontends need B's outbound port.
        self.replicas["b"] = SidecarUnderTest(self.waypoint_config, frontends=False, replica="b",
                                              work_dir=self.work_dir / "b", **self.options)
        self.replicas["b"].start()
        self.replicas["a"] = SidecarUnderTest(self.waypoint_config, replica="a",
                                              peers={"b": self.replicas["b"].edge_port},
                                              work_dir=self.work_dir / "a", **self.options)
        self.replicas["a"].start()
        return self.replicas["a"]

    def _hops(self) -> list[tuple[str, SidecarUnderTest]]:
        return [(f"waypoint replica {name}", r) for name, r in self.replicas.items()]


# ---------------------------------------------------------------- a fast inbound flood
# Filling a trace table takes hundreds of thousands of requests; one at a time through an
# HTTP library, the Python client (not Envoy) would be the bottleneck on a shared machine.
# So the flood speaks HTTP/2 itself: each request is one pre-encoded HEADERS frame (HPACK
# literals without indexing: no encoder state), many streams in flight per connection.
# Envoy answers the sink with a bare HEADERS frame; a 200 is the static-table index 8
# (0x88) that every HPACK encoder uses for it, so anything else counts as not answered 200.

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_DATA, FRAME_HEADERS, FRAME_RST_STREAM, FRAME_SETTINGS = 0x0, 0x1, 0x3, 0x4
FRAME_PING, FRAME_GOAWAY, FRAME_WINDOW_UPDATE = 0x6, 0x7, 0x8
FLAG_END_STREAM, FLAG_ACK, FLAG_END_HEADERS, FLAG_PADDED, FLAG_PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def _hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out, value = bytearray([first | limit]), value - limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack_string(text: str) -> bytes:
    data = text.encode()
    return _hpack_int(len(data), 7) + data


def _request_block(header_list: list[tuple[str, str]]) -> bytes:
    """GET / to authority "sink" with `header_list`, as an HPACK header block."""
    block = bytearray(b"\x82\x86\x84")  # :method GET, :scheme http, :path / (static table)
    block += b"\x01" + _hpack_string("sink")  # :authority, name from the static table
    for name, value in header_list:
        block += b"\x00" + _hpack_string(name.lower()) + _hpack_string(value)
    return bytes(block)


def _split_frames(buffer: bytes) -> tuple[list[tuple[int, int, int, bytes]], bytes]:
    """The whole frames at the start of `buffer` as (kind, flags, stream, payload), and the
    bytes after them."""
    frames = []
    while len(buffer) >= 9:
        length = int.from_bytes(buffer[:3], "big")
        if len(buffer) < 9 + length:
            break
        kind, flags = buffer[3], buffer[4]
        stream = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
        payload, buffer = buffer[9:9 + length], buffer[9 + length:]
        frames.append((kind, flags, stream, payload))
    return frames, buffer


def _on_frame(kind: int, flags: int, stream: int, payload: bytes, status_ok: dict[int, bool],
              replies: list[bytes]) -> bool | None:
    """One frame from the sidecar: SETTINGS and PING acknowledged and DATA's window given
    back (into `replies`), a response's status noted in `status_ok` (our open streams).
    Returns whether the stream was answered 200 when the frame ends one of ours (and drops
    it from `status_ok`), otherwise None."""
    if kind == FRAME_SETTINGS and not flags & FLAG_ACK:
        replies.append(_frame(FRAME_SETTINGS, FLAG_ACK, 0))
    elif kind == FRAME_PING and not flags & FLAG_ACK:
        replies.append(_frame(FRAME_PING, FLAG_ACK, 0, payload))
    elif kind == FRAME_GOAWAY:
        raise AssertionError(f"the sidecar sent GOAWAY: {payload[:64]!r}")
    elif kind == FRAME_HEADERS and stream in status_ok:
        skip = (1 + payload[0] if flags & FLAG_PADDED else 0) + (5 if flags & FLAG_PRIORITY else 0)
        if not flags & FLAG_END_HEADERS:
            raise AssertionError("a response header block in CONTINUATION frames")
        status_ok[stream] = status_ok[stream] or payload[skip:skip + 1] == b"\x88"
    elif kind == FRAME_DATA and payload:
        increment = len(payload).to_bytes(4, "big")
        replies += [_frame(FRAME_WINDOW_UPDATE, 0, 0, increment),
                    _frame(FRAME_WINDOW_UPDATE, 0, stream, increment)]
    ends = kind == FRAME_RST_STREAM or (kind in (FRAME_HEADERS, FRAME_DATA) and flags & FLAG_END_STREAM)
    if ends and stream in status_ok:
        return status_ok.pop(stream)
    return None


def flood_inbound(port: int, headers: Iterable[list[tuple[str, str]]], *, connections: int = 4,
                  in_flight: int = 100, timeout_s: float = 180.0) -> int:
    """Send one GET per header list to 127.0.0.1:port over HTTP/2 (h2c prior knowledge),
    `in_flight` streams at a time on each of `connections` connections; returns how many
    were answered 200. Bounded by `timeout_s`."""
    blocks = [_request_block(header_list) for header_list in headers]
    shares = [blocks[i::connections] for i in range(connections)]

    async def one_connection(share: list[bytes]) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(H2_PREFACE + _frame(FRAME_SETTINGS, 0, 0))
        ok = sent = done = 0
        status_ok: dict[int, bool] = {}
        buffer = b""
        try:
            while done < len(share):
                burst = []
                while sent < len(share) and sent - done < in_flight:
                    stream = 2 * sent + 1
                    burst.append(_frame(FRAME_HEADERS, FLAG_END_STREAM | FLAG_END_HEADERS,
                                        stream, share[sent]))
                    status_ok[stream] = False
                    sent += 1
                if burst:
                    writer.write(b"".join(burst))
                    await writer.drain()
                data = await asyncio.wait_for(reader.read(1 << 18), REQUEST_TIMEOUT_S)
                if not data:
                    raise AssertionError(f"the sidecar closed a connection with "
                                         f"{sent - done} streams open")
                frames, buffer = _split_frames(buffer + data)
                replies: list[bytes] = []
                for frame in frames:
                    answered_200 = _on_frame(*frame, status_ok, replies)
                    if answered_200 is not None:
                        ok += answered_200
                        done += 1
                if replies:
                    writer.write(b"".join(replies))
        finally:
            writer.close()
        return ok

    async def all_connections() -> int:
        counts = await asyncio.wait_for(
            asyncio.gather(*(one_connection(share) for share in shares if share)), timeout_s)
        return sum(counts)

    return asyncio.run(all_connections())
