#!/usr/bin/env python3
"""Real-Envoy load comparison for canary-tagger (the Envoy half of `make bench`).

Every number is a ratio measured in the same run: all Envoys are up for the whole run, and
in every round each job measures each of its variants once, in a rotated order, so a slow
spell of the shared machine hits every variant alike. Reported values are medians over the
rounds of per-round ratios.

Variants (one Envoy each, --concurrency 1, pinned to CPU 0; load generators on CPU 1):

  none              no HTTP filter besides the router
  lua               bench/lua/seed.lua: the seed config's decisions as an operator's Lua
  empty-wasm        bench/empty-filter: a Rust proxy-wasm filter doing nothing, exporting every
                    callback as the SDK does (what a user's own filter costs at least)
  empty-wasm-lean   the same empty filter, exporting only the callbacks `make wasm` keeps
  abi-floor         bench/floor-filter: reads the request header map once and sets the tag
                    (x-canary-version: v1), nothing else; `make wasm`'s exports. The least
                    any tagging filter pays through the proxy-wasm ABI (issue 26)
  canary-seed       dist/canary_tagger.wasm, fixtures/configs/spec-example.json (SPEC section 2)
  canary-50rules    dist/canary_tagger.wasm, fixtures/configs/rules50.json
  canary-norules    dist/canary_tagger.wasm, fixtures/configs/no-rules.json (tag + spoof guard)
  canary-lean9      dist/canary_tagger.wasm, fixtures/configs/rules9-lean.json: the seed's five
                    rules and four more no bench request matches (the deepest request walks
                    all nine), no normalize, baggage, response header or sticky cookie
  lua-grpc          bench/lua/grpc-normalize.lua: SEEDS.md setup A's script
  canary-grpc       dist/canary_tagger.wasm, envoyfilter/grpc-normalize/plugin-config.json
  *-upstream        none, empty-wasm, lua, canary-seed proxying to an upstream Envoy (a
                    direct response on CPU 1) instead of answering directly

Jobs (the load each variant of the job gets in every round):

  h1        wrk -t1 -c50 --latency, cycling through the request mix of fixtures/requests.json
  h2        h2load -t1 -c50 -m10, the seed config's deepest request (HTTP/2)
  grpc      h2load -t1 -c50 -m10, a gRPC POST with `grpcsvc: v9` (normalized to v1)
  upstream  wrk as in h1, through the *-upstream variants
  half      (--half-peak) h2load --h1 -c10 at a constant rate: half of canary-seed's
            median h1 peak in the rounds before; latency at half load

Before measuring, every variant answers every request kind it will get and must make the
expected decision (the router sees the tag: a check route echoes it), then is warmed up.
Envoy's CPU time per request comes from /proc/<pid>/stat over each window.

Only the standard library; run with the project venv's python (make bench does).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / "work"
RESULTS = BENCH / "results"
TAG = "x-canary-version"

CANARY_WASM = Path(os.environ.get("CANARY_WASM", ROOT / "dist" / "canary_tagger.wasm"))
EMPTY_TARGET = BENCH / "empty-filter" / "target"
EMPTY_WASM = EMPTY_TARGET / "empty_filter.opt.wasm"
EMPTY_LEAN_WASM = EMPTY_TARGET / "empty_filter.lean.wasm"
FLOOR_WASM = BENCH / "floor-filter" / "target" / "floor_filter.wasm"
FIXTURES = ROOT / "fixtures"  # shared with the Rust tests and benches
SEED_CONFIG = FIXTURES / "configs" / "spec-example.json"
RULES50_CONFIG = FIXTURES / "configs" / "rules50.json"
LEAN9_CONFIG = FIXTURES / "configs" / "rules9-lean.json"
NORULES_CONFIG = FIXTURES / "configs" / "no-rules.json"
GRPC_CONFIG = ROOT / "envoyfilter" / "grpc-normalize" / "plugin-config.json"
REQUESTS = FIXTURES / "requests.json"
LUA_SEED = BENCH / "lua" / "seed.lua"
LUA_GRPC = BENCH / "lua" / "grpc-normalize.lua"

# A request carrying this header is answered by a check route that echoes what the router
# saw (the headers after every filter ran); the measured requests never carry it.
CHECK_HEADER = "x-bench-check"
GRPC_PATH = "/forecast.Forecast/GetForecast"
GRPC_HEADERS = [["content-type", "application/grpc"], ["te", "trailers"],
                ["user-agent", "grpc-go/1.63.2"], ["grpcsvc", "v9"]]
# A length-prefixed gRPC message (uncompressed, 7 bytes of protobuf).
GRPC_BODY = b"\x00\x00\x00\x00\x07\x0a\x05paris"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def die(msg: str) -> None:
    print(f"bench: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# --------------------------------------------------------------------------- decisions
# Expected decisions for the preflight check. The split buckets follow SPEC section 3 for
# canary-tagger and seed.lua's djb2 for the Lua variant (the Lua is not bit-identical).

M64 = (1 << 64) - 1


def spec_bucket(salt: str, key: str) -> int:
    h = 0xCBF29CE484222325
    for b in f"{salt}:{key}".encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    h ^= h >> 33
    return h % 10000


assert [spec_bucket("android-half", "alice"), spec_bucket("ramp", "2001:db8::1"), spec_bucket("", "")] == [
    5246, 6769, 1709], "SPEC section 3 test vectors"


def djb2_bucket(salt: str, key: str) -> int:
    h = 5381
    for b in f"{salt}:{key}".encode():
        h = (h * 33 + b) % 4294967296
    return h % 10000


def split_key(req: dict) -> str:
    headers = dict(req["headers"])
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == "uid":
            return value
    if "x-user-id" in headers:
        return headers["x-user-id"]
    return headers["x-forwarded-for"].split(",")[-1].strip()  # trusted_hops 1 skips the peer


def seed_decision(req: dict, bucket=spec_bucket) -> str:
    if req["seed"] != "split":
        return req["seed"]
    return "v2" if bucket("android", split_key(req)) < 5000 else "v1"


# --------------------------------------------------------------------------- variants

@dataclass
class Variant:
    filters: list
    upstream: bool = False
    # request kind -> (header the router must see, its expected value or None for absent)
    expect: dict = field(default_factory=dict)


def wasm_filter(name: str, module: Path, configuration: str) -> dict:
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": name,
                "vm_config": {
                    "vm_id": name,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": str(module)}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration,
                },
            },
        },
    }


def lua_filter(script: Path) -> dict:
    return {
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": script.read_text()},
        },
    }


def variants(requests: list[dict]) -> dict[str, Variant]:
    def browser(decide) -> dict:
        return {r["name"]: (TAG, decide(r)) for r in requests}

    untouched = browser(lambda r: dict(r["headers"]).get(TAG))  # whatever the client sent
    grpc_kinds = {"grpc-v9": ("grpcsvc", "v1"), "grpc-v3": ("grpcsvc", "v3"),
                  "grpc-missing": ("grpcsvc", "v1"), "not-grpc": ("grpcsvc", "v9")}
    grpc_untouched = {"grpc-v9": ("grpcsvc", "v9"), "grpc-v3": ("grpcsvc", "v3"),
                      "grpc-missing": ("grpcsvc", None), "not-grpc": ("grpcsvc", "v9")}
    canary = lambda config: wasm_filter("canary-tagger", CANARY_WASM, config.read_text())  # noqa: E731
    empty = wasm_filter("empty-filter", EMPTY_WASM, "")
    empty_lean = wasm_filter("empty-filter", EMPTY_LEAN_WASM, "")
    floor = wasm_filter("floor-filter", FLOOR_WASM, "")
    rollout = lambda r: "v2" if spec_bucket("rollout", split_key(r)) < 1000 else "v1"  # noqa: E731
    out = {
        "none": Variant([], expect={**untouched, **grpc_untouched}),
        "lua": Variant([lua_filter(LUA_SEED)], expect=browser(lambda r: seed_decision(r, djb2_bucket))),
        "empty-wasm": Variant([empty], expect={**untouched, **grpc_untouched}),
        "empty-wasm-lean": Variant([empty_lean], expect={**untouched, **grpc_untouched}),
        "abi-floor": Variant([floor], expect={**browser(lambda r: "v1"), **grpc_untouched}),
        "canary-seed": Variant([canary(SEED_CONFIG)], expect=browser(seed_decision)),
        "canary-50rules": Variant([canary(RULES50_CONFIG)], expect=browser(rollout)),
        "canary-norules": Variant([canary(NORULES_CONFIG)], expect=browser(lambda r: "v1")),
        "canary-lean9": Variant([canary(LEAN9_CONFIG)], expect=browser(seed_decision)),
        "lua-grpc": Variant([lua_filter(LUA_GRPC)], expect=grpc_kinds),
        "canary-grpc": Variant([canary(GRPC_CONFIG)], expect=grpc_kinds),
    }
    for name in ("none", "empty-wasm", "lua", "canary-seed"):
        out[f"{name}-upstream"] = Variant(out[name].filters, upstream=True,
                                          expect={k: v for k, v in out[name].expect.items()
                                                  if k in untouched})
    return out


@dataclass
class Job:
    load: str
    baseline: str
    variants: list[str]
    what: str


JOBS = {
    "h1": Job("wrk-mix", "none", ["none", "lua", "empty-wasm", "empty-wasm-lean", "abi-floor",
                                  "canary-seed", "canary-50rules", "canary-norules", "canary-lean9"],
              "HTTP/1.1 peak: wrk -t1 -c50 --latency, the request mix of fixtures/requests.json"),
    "h2": Job("h2-deep", "none", ["none", "lua", "empty-wasm", "empty-wasm-lean", "abi-floor",
                                  "canary-seed", "canary-50rules", "canary-norules", "canary-lean9"],
              "HTTP/2 peak: h2load -t1 -c50 -m10, the seed config's deepest request"),
    "grpc": Job("h2-grpc", "none", ["none", "empty-wasm", "empty-wasm-lean", "abi-floor", "lua-grpc",
                         "canary-grpc"],
                "gRPC peak: h2load -t1 -c50 -m10, POST with content-type application/grpc and "
                "grpcsvc: v9"),
    "upstream": Job("wrk-mix", "none-upstream", ["none-upstream", "empty-wasm-upstream", "lua-upstream",
                                                 "canary-seed-upstream"],
                    "HTTP/1.1 peak through to an upstream: wrk as in h1; every variant proxies to "
                    "one upstream Envoy (direct response, on the load generator's CPU)"),
}
HALF = Job("h1-constant", "none", ["none", "lua", "empty-wasm", "canary-seed"],
           "Half of peak: h2load --h1 -t1 -c10 -m1 --rps, the deepest request, at half of "
           "canary-seed's median h1 peak of the rounds before (the same rate for all)")

# Ratios reported (and used by the goals): (numerator, denominator, jobs).
PAIRS = [
    ("canary-grpc", "abi-floor", ("grpc",)),
    ("canary-seed", "abi-floor", ("h1", "h2")),
    ("canary-norules", "abi-floor", ("h1", "h2")),
    ("canary-lean9", "abi-floor", ("h1", "h2")),
    ("abi-floor", "empty-wasm", ("h1", "h2", "grpc")),
    ("abi-floor", "empty-wasm-lean", ("h1", "h2", "grpc")),
    ("lua", "abi-floor", ("h1", "h2")),
    ("lua-grpc", "abi-floor", ("grpc",)),
    ("canary-seed", "empty-wasm", ("h1", "h2")),
    ("canary-seed", "lua", ("h1", "h2")),
    ("canary-seed", "empty-wasm-lean", ("h1", "h2")),
    ("canary-norules", "empty-wasm", ("h1", "h2")),
    ("canary-50rules", "canary-seed", ("h1", "h2")),
    ("empty-wasm-lean", "empty-wasm", ("h1", "h2", "grpc")),
    ("canary-grpc", "empty-wasm", ("grpc",)),
    ("canary-grpc", "lua-grpc", ("grpc",)),
    ("lua-grpc", "empty-wasm", ("grpc",)),
    ("canary-seed-upstream", "empty-wasm-upstream", ("upstream",)),
    ("canary-seed-upstream", "lua-upstream", ("upstream",)),
    ("empty-wasm", "none", ("h1", "h2", "grpc")),
    ("lua", "none", ("h1", "h2")),
]


# --------------------------------------------------------------------------- Envoy config

_ports_taken: set[int] = set()


def free_port() -> int:
    """A free loopback port, never the same twice in one run (several Envoys run at once)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_taken:
            _ports_taken.add(port)
            return port
    die("no free loopback port")


def routes(final_action: dict) -> list[dict]:
    """The check route (echoes the tag and grpcsvc the router sees), then the real one."""
    echo = [{"header": {"key": f"x-seen-{name}", "value": f"%REQ({name})%"}}
            for name in (TAG, "grpcsvc")]
    check = {"match": {"prefix": "/", "headers": [{"name": CHECK_HEADER, "present_match": True}]},
             "direct_response": {"status": 200, "body": {"inline_string": "checked"}},
             "response_headers_to_add": echo}
    return [check, {"match": {"prefix": "/"}, **final_action}]


def listener(name: str, port: int, filters: list, action: dict) -> dict:
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": name,
        "codec_type": "AUTO",
        # As on istio-ingressgateway: Envoy appends the peer to x-forwarded-for.
        "use_remote_address": True,
        "route_config": {"name": name, "virtual_hosts": [
            {"name": "all", "domains": ["*"], "routes": routes(action)}]},
        "http_filters": filters + [{
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }],
    }
    return {"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}]}


DIRECT = {"direct_response": {"status": 200, "body": {"inline_string": "ok"}}}


def bootstrap(variant: Variant, port: int, admin_port: int, upstream_port: int | None) -> dict:
    resources: dict = {}
    if variant.upstream:
        action = {"route": {"cluster": "upstream", "timeout": "10s"}}
        resources["clusters"] = [{
            "name": "upstream", "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                               "port_value": upstream_port}}}}]}]},
        }]
    else:
        action = DIRECT
    resources["listeners"] = [listener("bench", port, variant.filters, action)]
    return {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
            "static_resources": resources}


def upstream_bootstrap(port: int, admin_port: int) -> dict:
    """The upstream the *-upstream variants proxy to: answers directly, echoes on checks."""
    return {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
            "static_resources": {"listeners": [listener("upstream", port, [], DIRECT)]}}


# --------------------------------------------------------------------------- processes

class Pinning:
    """Envoys on CPU 0, load generators (and the upstream) on CPU 1, when there are two."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2

    def envoy(self, cmd: list[str]) -> list[str]:
        return ["taskset", "-c", "0", *cmd] if self.enabled else cmd

    def load(self, cmd: list[str]) -> list[str]:
        return ["taskset", "-c", "1", *cmd] if self.enabled else cmd


class Envoy:
    """One Envoy of the run. Its bootstrap is written when it starts, from `make_config(port,
    admin_port)`: other agents on a shared machine may take a port between our choosing it
    and Envoy binding it, so a start that fails to bind is retried with fresh ports."""

    def __init__(self, envoy_bin: str, name: str, make_config, cmd_prefix):
        self.envoy_bin = envoy_bin
        self.variant = name
        self.make_config = make_config
        self.cmd_prefix = cmd_prefix
        self.config_path = WORK / f"{name}.json"
        self.log_path = WORK / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.write_config()

    def write_config(self) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.config_path.write_text(json.dumps(self.make_config(self.port, self.admin_port), indent=1))

    def start(self, timeout: float = 60.0, attempts: int = 3) -> None:
        for attempt in range(attempts):
            if attempt:
                self.write_config()
            if self.try_start(timeout):
                return
            if "Address already in use" not in self.log_path.read_text(errors="replace"):
                break
            log(f"{self.variant}: a port was taken before Envoy bound it; retrying with new ports")
        self.stop()
        die(f"{self.variant}: Envoy did not start; see {self.log_path}")

    def try_start(self, timeout: float) -> bool:
        cmd = self.cmd_prefix([self.envoy_bin, "-c", str(self.config_path), "--concurrency", "1",
                               "--disable-hot-restart", "--log-level", "warn"])
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                            return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def memory_kb(self) -> dict:
        assert self.proc is not None
        out = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
        return out

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def cpu_pressure_us() -> int | None:
    """Total time (µs) some runnable task waited for a CPU, machine-wide (Linux PSI)."""
    try:
        text = Path("/proc/pressure/cpu").read_text()
    except OSError:
        return None
    m = re.search(r"^some .*total=(\d+)", text, re.M)
    return int(m.group(1)) if m else None


def steal_seconds() -> float:
    """CPU time the hypervisor gave to someone else, summed over CPUs (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def measured(envoy: Envoy, load) -> dict:
    """Runs one load measurement; adds Envoy's CPU time per request and two signs of a
    noisy machine over the same window: CPU pressure (share of the wall time some task
    waited for a CPU) and steal (share of CPU time the hypervisor took away)."""
    cpu0, psi0, steal0, t0 = envoy.cpu_seconds(), cpu_pressure_us(), steal_seconds(), time.monotonic()
    out = load()
    wall = time.monotonic() - t0
    out["envoy_cpu_us_per_req"] = (envoy.cpu_seconds() - cpu0) * 1e6 / max(1, out["requests"])
    psi1 = cpu_pressure_us()
    out["cpu_pressure"] = None if psi0 is None or psi1 is None else (psi1 - psi0) / (wall * 1e6)
    out["steal"] = (steal_seconds() - steal0) / (wall * (os.cpu_count() or 1))
    return out


def run(cmd: list[str], timeout: float) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        die(f"timed out after {timeout:.0f}s: {' '.join(cmd)}")
    if p.returncode != 0:
        die(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p.stdout


# --------------------------------------------------------------------------- load generators

def expand_mix(requests: list[dict]) -> list[dict]:
    mix = [r for r in requests for _ in range(r["repeat"])]
    random.Random(8).shuffle(mix)  # interleave templates; same order every run
    return mix


def lua_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_wrk_script(requests: list[dict]) -> Path:
    lines = ["-- generated by bench/envoy_bench.py from fixtures/requests.json", "local reqs = {}",
             "init = function(args)"]
    for r in expand_mix(requests):
        headers = ", ".join(f"[{lua_str(k)}] = {lua_str(v)}" for k, v in r["headers"])
        lines.append(f"  reqs[#reqs + 1] = wrk.format(\"GET\", {lua_str(r['path'])}, {{{headers}}})")
    lines += ["end", "local i = 0", "request = function()", "  i = i % #reqs + 1",
              "  return reqs[i]", "end", ""]
    path = WORK / "mix.lua"
    path.write_text("\n".join(lines))
    return path


UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


def parse_duration_us(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(pin: Pinning, url: str, script: Path, seconds: int, connections: int = 50) -> dict:
    out = run(pin.load(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                        url]), timeout=seconds + 30)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    pct = {m.group(1): parse_duration_us(m.group(2))
           for m in re.finditer(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    if errors or sock:
        die(f"wrk saw errors against {url}:\n{out}")
    return {"rps": rps, "p50_us": pct["50"], "p99_us": pct["99"], "requests": requests}


def percentile(sorted_values: list[float], q: float) -> float:
    idx = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[idx]


def h2load(pin: Pinning, url: str, headers: list[list[str]], seconds: int, connections: int,
           streams: int, h1: bool = False, rps_per_client: float | None = None,
           body: Path | None = None) -> dict:
    log_file = WORK / "h2load.log"
    log_file.unlink(missing_ok=True)
    cmd = ["h2load", "-t1", f"-c{connections}", f"-m{streams}", f"-D{seconds}", f"--log-file={log_file}"]
    if h1:
        cmd.append("--h1")
    if rps_per_client is not None:
        cmd.append(f"--rps={rps_per_client:.3f}")
    if body is not None:
        cmd.append(f"--data={body}")  # POST with this body
    for k, v in headers:
        cmd += ["-H", f"{k}: {v}"]
    out = run(pin.load(cmd + [url]), timeout=seconds + 30)
    m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    rps = float(m.group(3))
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                    r"(\d+) errored, (\d+) timeout", out)
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if int(req.group(5)) or int(req.group(6)) or int(req.group(7)) or int(status.group(4)) or int(status.group(3)):
        die(f"h2load saw errors against {url}:\n{out}")
    lat = sorted(float(line.split("\t")[2]) for line in log_file.read_text().splitlines() if line.strip())
    if not lat:
        die(f"h2load logged no requests:\n{out}")
    return {"rps": rps, "p50_us": percentile(lat, 0.50), "p99_us": percentile(lat, 0.99),
            "requests": len(lat)}


class Loads:
    """The load of each job, bound to this run's request mix and settings."""

    def __init__(self, pin: Pinning, requests: list[dict], seconds: int):
        self.pin, self.seconds = pin, seconds
        self.script = write_wrk_script(requests)
        self.deep = next(r for r in requests if r.get("h2load"))
        self.grpc_body = WORK / "grpc-body.bin"
        self.grpc_body.write_bytes(GRPC_BODY)

    def run(self, kind: str, envoy: Envoy, rate: float | None = None, seconds: int | None = None) -> dict:
        seconds = seconds or self.seconds
        if kind == "wrk-mix":
            return wrk(self.pin, envoy.url(), self.script, seconds)
        if kind == "h2-deep":
            return h2load(self.pin, envoy.url(self.deep["path"]), self.deep["headers"], seconds,
                          connections=50, streams=10)
        if kind == "h2-grpc":
            return h2load(self.pin, envoy.url(GRPC_PATH), GRPC_HEADERS, seconds,
                          connections=50, streams=10, body=self.grpc_body)
        if kind == "h1-constant":
            return h2load(self.pin, envoy.url(self.deep["path"]), self.deep["headers"], seconds,
                          connections=10, streams=1, h1=True, rps_per_client=rate / 10)
        raise ValueError(kind)


# --------------------------------------------------------------------------- checks

def check_requests(requests: list[dict]) -> dict[str, tuple[str, str, list, bytes | None]]:
    """Every request kind a variant may get: name -> (method, path, headers, body)."""
    out = {r["name"]: ("GET", r["path"], r["headers"], None) for r in requests}
    grpc = dict(GRPC_HEADERS)
    out["grpc-v9"] = ("POST", GRPC_PATH, list(grpc.items()), GRPC_BODY)
    out["grpc-v3"] = ("POST", GRPC_PATH, list({**grpc, "grpcsvc": "v3"}.items()), GRPC_BODY)
    out["grpc-missing"] = ("POST", GRPC_PATH, [kv for kv in grpc.items() if kv[0] != "grpcsvc"], GRPC_BODY)
    out["not-grpc"] = ("POST", "/upload", [("content-type", "application/json"), ("grpcsvc", "v9")], b"{}")
    return out


def preflight(envoy: Envoy, variant: Variant, kinds: dict) -> None:
    """Each request kind gets 200, and the router sees the header the variant must set."""
    bad = []
    for kind, (header, want) in variant.expect.items():
        method, path, headers, body = kinds[kind]
        conn = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=5)
        try:
            conn.request(method, path, body=body, headers={**dict(headers), CHECK_HEADER: "1"})
            resp = conn.getresponse()
            resp.read()
            seen = resp.getheader(f"x-seen-{header}")
        finally:
            conn.close()
        got = None if seen in (None, "-") else seen
        if resp.status != 200 or got != want:
            bad.append(f"  {kind}: status {resp.status}, {header} {got!r}, expected {want!r}")
    if bad:
        die(f"{envoy.variant} does not make the expected decisions:\n" + "\n".join(bad))


# --------------------------------------------------------------------------- reporting

def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kb / 1048576, 1),
            "kernel": platform.release()}


def tool_versions(envoy_bin: str) -> dict:
    def first_line(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"
    return {"envoy": first_line([envoy_bin, "--version"]).split("version:")[-1].strip(),
            "wrk": first_line(["wrk", "-v"]), "h2load": first_line(["h2load", "--version"])}


def summarize(rounds: list[dict], jobs: dict[str, Job], memory: dict) -> dict:
    """Per job and variant: medians over rounds; ratios and differences to the job's
    baseline paired within a round first. Then the PAIRS ratios, paired the same way."""
    summary: dict = {"jobs": {}, "pairs": {}, "memory_kb": memory}
    for name, job in jobs.items():
        rs = [r[name] for r in rounds if name in r]
        per_variant = {}
        for v in job.variants:
            s: dict = {}
            for m in ("rps", "p50_us", "p99_us", "envoy_cpu_us_per_req"):
                s[m] = med([r[v][m] for r in rs])
                s[f"{m}.ratio"] = med([r[v][m] / r[job.baseline][m] for r in rs])
                added = [r[v][m] - r[job.baseline][m] for r in rs]
                s[f"{m}.added"] = med(added)
                s[f"{m}.added_range"] = [min(added), max(added)] if added else None
            per_variant[v] = s
        summary["jobs"][name] = per_variant
    for a, b, pair_jobs in PAIRS:
        for name in pair_jobs:
            rs = [r[name] for r in rounds if name in r and a in r[name] and b in r[name]]
            if rs:
                ratios = [r[a]["rps"] / r[b]["rps"] for r in rs]
                summary["pairs"][f"{a} / {b}|{name}"] = {"median": med(ratios), "min": min(ratios),
                                                         "max": max(ratios)}
    for key in ("cpu_pressure", "steal"):
        values = [rec[key] for r in rounds for job in r.values() for rec in job.values()
                  if rec.get(key) is not None]
        summary[key] = {"median": med(values), "max": max(values) if values else None}
    return summary


def goals(result: dict) -> list[tuple[str, str, str]]:
    """Issue 11's goals against the empty filter, then issue 26's against the ABI floor:
    (goal, measured, verdict)."""
    pairs, out = result["summary"]["pairs"], []

    def ratio(a: str, b: str, job: str) -> float | None:
        p = pairs.get(f"{a} / {b}|{job}")
        return p and p["median"]

    def verdict(values: list[float | None], want: float) -> str:
        if any(v is None for v in values):
            return "not measured"
        return "met" if min(values) >= want else "**not met**"

    def both(a: str, b: str) -> tuple[str, list]:
        h1, h2 = ratio(a, b, "h1"), ratio(a, b, "h2")
        return f"{fmt(h1, '.3f')} × (HTTP/1.1), {fmt(h2, '.3f')} × (HTTP/2)", [h1, h2]

    g = ratio("canary-grpc", "empty-wasm", "grpc")
    out.append(("gRPC normalization (grpc-normalize recipe vs the seed's Lua job) ≥ 0.95 × empty-wasm",
                f"{fmt(g, '.3f')} × (Lua: {fmt(ratio('lua-grpc', 'empty-wasm', 'grpc'), '.3f')} ×)",
                verdict([g], 0.95)))
    text, values = both("canary-seed", "empty-wasm")
    out.append(("seed config ≥ 0.90 × empty-wasm", text, verdict(values, 0.90)))
    text, values = both("canary-seed", "lua")
    out.append(("seed config ≥ 1.3 × the seed's full Lua", text, verdict(values, 1.3)))
    text, values = both("canary-norules", "empty-wasm")
    out.append(("config with no rules ≥ 0.95 × empty-wasm", text, verdict(values, 0.95)))
    g = ratio("canary-grpc", "abi-floor", "grpc")
    out.append(("issue 26: gRPC job ≥ 0.97 × abi-floor", f"{fmt(g, '.3f')} ×", verdict([g], 0.97)))
    text, values = both("canary-lean9", "abi-floor")
    out.append(("issue 26: 9-rule lean config ≥ 0.93 × abi-floor", text, verdict(values, 0.93)))
    text, values = both("canary-norules", "abi-floor")
    out.append(("issue 26: config with no rules ≥ 0.98 × abi-floor", text, verdict(values, 0.98)))
    size = result["modules"].get("canary_tagger.wasm")
    if size:
        out.append(("module ≤ 640 KB", f"{size / 1024:.0f} KiB ({size} bytes)",
                    "met" if size <= 640 * 1024 else "**not met**"))
    return out


def fmt(x, spec=".0f"):
    return "–" if x is None else f"{x:{spec}}"


def markdown(result: dict) -> str:
    s = result["summary"]
    cp, st = s["cpu_pressure"], s["steal"]
    envoy = result["tools"]["envoy"]
    out = [f"{result['rounds']} rounds, {result['seconds']} s per measurement, variant order rotated "
           f"each round; Envoy {envoy.split('/')[1] if '/' in envoy else envoy} --concurrency 1"
           f"{', pinned to CPU 0, load generators on CPU 1' if result['pinned'] else ''}. "
           f"Medians over rounds; ×base and +base are per-round ratios/differences to the job's "
           f"baseline, then the median. Machine CPU pressure during the measurements (PSI some): "
           f"median {fmt(cp['median'] and cp['median'] * 100)} %, max {fmt(cp['max'] and cp['max'] * 100)} %; "
           f"steal: median {fmt(st['median'] and st['median'] * 100, '.1f')} %, "
           f"max {fmt(st['max'] and st['max'] * 100, '.1f')} %.", ""]
    for name, job in result["jobs"].items():
        rows = s["jobs"].get(name)
        if not rows:
            continue
        out += [f"**{name}** — {job['what']} (baseline: {job['baseline']})", "",
                "| variant | req/s | ×base | p50 µs | p99 µs | Envoy CPU µs/req | +base |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for v in job["variants"]:
            x = rows[v]
            out.append(f"| {v} | {fmt(x['rps'])} | {fmt(x['rps.ratio'], '.3f')} | {fmt(x['p50_us'])} "
                       f"| {fmt(x['p99_us'])} | {fmt(x['envoy_cpu_us_per_req'], '.1f')} "
                       f"| {fmt(x['envoy_cpu_us_per_req.added'], '+.1f')} |")
        out.append("")
    if s["pairs"]:
        out += ["**Throughput ratios** (median of per-round ratios; min … max over rounds)", "",
                "| ratio | job | median | min … max |", "|---|---|---:|---:|"]
        for key, p in s["pairs"].items():
            pair, job = key.split("|")
            out.append(f"| {pair} | {job} | {p['median']:.3f} | {p['min']:.3f} … {p['max']:.3f} |")
        out.append("")
    out += ["**Envoy memory** (each variant's Envoy after all its measurements)", "",
            "| variant | VmRSS MiB | VmHWM MiB |", "|---|---:|---:|"]
    for v, mem in s["memory_kb"].items():
        out.append(f"| {v} | {mem['VmRSS'] / 1024:.1f} | {mem['VmHWM'] / 1024:.1f} |")
    out.append("")
    if result["modules"]:
        out += ["**Modules** (as `make wasm` / `make bench` build them)", "",
                "| module | bytes | KiB |", "|---|---:|---:|"]
        out += [f"| {n} | {b} | {b / 1024:.1f} |" for n, b in result["modules"].items()]
        out.append("")
    g = goals(result)
    out += ["**Goals of issues 11 and 26** (goals, not test thresholds)", "", "| goal | measured | |",
            "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in g]
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", default=os.environ.get("BENCH_JOBS", ",".join(JOBS)),
                    help="comma-separated subset of " + ",".join(JOBS) + " (env BENCH_JOBS)")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 8)),
                    help="rounds (env BENCH_ROUNDS; default 8)")
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 3)),
                    help="duration of each measurement (env BENCH_SECONDS; default 3)")
    ap.add_argument("--half-peak", action="store_true",
                    help="also measure latency at a constant half-peak rate (issue 8's p99 goal)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin Envoy / load generator to CPUs")
    ap.add_argument("--envoy", default=os.environ.get("ENVOY", str(ROOT / ".venv" / "bin" / "envoy")))
    ap.add_argument("--render", metavar="RESULT_JSON",
                    help="only print the tables of a saved bench/results/*-envoy.json")
    args = ap.parse_args()
    if args.render:
        print(markdown(json.loads(Path(args.render).read_text())))
        return

    jobs = {}
    for name in (j.strip() for j in args.jobs.split(",") if j.strip()):
        if name not in JOBS:
            die(f"unknown job {name!r}; choose from {list(JOBS)}")
        jobs[name] = JOBS[name]
    if args.half_peak:
        jobs["half"] = HALF
    if not jobs:
        die("no jobs")
    if not 1 <= args.rounds <= 20 or not 1 <= args.seconds <= 60:
        die("rounds must be 1..20 and seconds 1..60")
    if not Path(args.envoy).exists():
        die(f"no Envoy at {args.envoy}: run `make venv`")
    for tool in ("wrk", "h2load"):
        if not shutil.which(tool):
            die(f"{tool} not installed (bench/run.sh installs it)")
    for module in (CANARY_WASM, EMPTY_WASM, EMPTY_LEAN_WASM, FLOOR_WASM):
        if not module.exists():
            die(f"{module} is missing: bench/run.sh builds it (`make wasm` the canary module)")

    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for old in WORK.glob("*.log"):
        old.unlink()
    requests = json.loads(REQUESTS.read_text())["requests"]
    all_variants = variants(requests)
    kinds = check_requests(requests)
    pin = Pinning(not args.no_pin)
    loads = Loads(pin, requests, args.seconds)
    started = time.monotonic()

    used = list(dict.fromkeys(v for job in jobs.values() for v in job.variants))
    upstream = None
    if any(all_variants[v].upstream for v in used):
        upstream = Envoy(args.envoy, "upstream-server", upstream_bootstrap, pin.load)
    envoys = {v: Envoy(args.envoy, v,
                       lambda port, admin, v=v: bootstrap(all_variants[v], port, admin,
                                                          upstream and upstream.port),
                       pin.envoy)
              for v in used}
    everyone = ([upstream] if upstream else []) + list(envoys.values())
    for e in everyone:
        run([args.envoy, "--mode", "validate", "-c", str(e.config_path), "--log-level", "error"], timeout=60)
    log(f"validated {len(everyone)} bootstraps")
    try:
        for e in everyone:
            if e is not upstream:
                e.write_config()  # the upstream's final port is known now
            e.start()
        for v, e in envoys.items():
            preflight(e, all_variants[v], kinds)
        for job in jobs.values():  # warm-up: connections, V8 tier-up, Lua JIT
            if job.load != "h1-constant":
                for v in job.variants:
                    loads.run(job.load, envoys[v], seconds=1)
        log(f"preflight ok: every variant makes the expected decisions; jobs {', '.join(jobs)}")

        rounds: list[dict] = []
        half_rates = []
        for i in range(args.rounds):
            record: dict = {}
            for name, job in jobs.items():
                rate = None
                if job.load == "h1-constant":
                    if not rounds or "h1" not in rounds[0]:
                        continue  # needs a peak measured in an earlier round
                    rate = 0.5 * statistics.median(r["h1"]["canary-seed"]["rps"] for r in rounds)
                    half_rates.append(rate)
                k = i % len(job.variants)
                order = job.variants[k:] + job.variants[:k]
                record[name] = {}
                for v in order:
                    e = envoys[v]
                    rec = measured(e, lambda: loads.run(job.load, e, rate))
                    record[name][v] = rec
                log(f"round {i + 1}/{args.rounds} {name:8s} " + "  ".join(
                    f"{v} {record[name][v]['rps']:.0f}/s {record[name][v]['envoy_cpu_us_per_req']:.1f}µs"
                    for v in job.variants))
            rounds.append(record)
        memory = {v: e.memory_kb() for v, e in envoys.items()}
    finally:
        for e in everyone:
            e.stop()

    modules = {"canary_tagger.wasm": CANARY_WASM.stat().st_size,
               "empty_filter.opt.wasm (SDK exports)": EMPTY_WASM.stat().st_size,
               "empty_filter.lean.wasm (make wasm's exports)": EMPTY_LEAN_WASM.stat().st_size,
               "floor_filter.wasm (make wasm's exports)": FLOOR_WASM.stat().st_size}
    result = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "tools": tool_versions(args.envoy),
        "jobs": {n: {"what": j.what, "baseline": j.baseline, "variants": j.variants, "load": j.load}
                 for n, j in jobs.items()},
        "rounds": args.rounds,
        "seconds": args.seconds,
        "pinned": pin.enabled,
        "half_peak_rates": half_rates,
        "modules": modules,
        "raw": rounds,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    result["summary"] = summarize(rounds, jobs, memory)
    table = markdown(result)
    stamp = os.environ.get("BENCH_STAMP", time.strftime("%Y%m%d-%H%M%S"))
    (RESULTS / f"{stamp}-envoy.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{stamp}-envoy.md").write_text(table + "\n")
    print()
    print(table)
    log(f"raw results: {RESULTS / (stamp + '-envoy.json')} (Envoy part took {result['elapsed_s']:.0f} s)")


if __name__ == "__main__":
    main()
