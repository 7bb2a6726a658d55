#!/usr/bin/env python3
"""Real-Envoy load comparison for canary-tagger (the Envoy half of `make bench`).

Five variants of one Envoy listener (direct response 200 "ok"), measured in the same run,
alternating, so that every number can be reported as a ratio to "none" from the same run:

  none            no HTTP filter besides the router
  lua             bench/lua/seed.lua: the seed config's decisions as an operator's Lua script
  empty-wasm      bench/empty-filter: a Rust proxy-wasm filter that does nothing (the floor)
  canary-seed     dist/canary_tagger.wasm with fixtures/configs/spec-example.json (SPEC section 2)
  canary-50rules  dist/canary_tagger.wasm with fixtures/configs/rules50.json

One Envoy per variant (--concurrency 1; all pinned to CPU 0 when there are two or more
CPUs, the load generator to CPU 1) is started, checked for the decisions it makes for every
request of fixtures/requests.json, and warmed up. Then, for 8 rounds (BENCH_ROUNDS), every
variant in a rotated order gets

  wrk    -t1 -c50 -d3s --latency  HTTP/1.1, cycling through the request mix    (peak)
  h2load -t1 -c50 -m10 -D3        HTTP/2, the deepest seed path                (peak)
  h2load --h1 -t1 -c10 --rps      HTTP/1.1 at a constant rate (rounds 2..N): half of the
                                  median canary-seed wrk peak of the rounds before  (half peak)

with Envoy's CPU time per request from /proc/<pid>/stat over each window; VmRSS / VmHWM at
the end. Medians over rounds; ratios to "none" are per-round ratios (paired within a
round), then the median of those. Many short rounds with every variant running all along
(no restarts between rounds) make the ratios robust on a shared, noisy machine.

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / "work"
RESULTS = BENCH / "results"
ALL_VARIANTS = ["none", "lua", "empty-wasm", "canary-seed", "canary-50rules"]
TAG = "x-canary-version"

CANARY_WASM = Path(os.environ.get("CANARY_WASM", ROOT / "dist" / "canary_tagger.wasm"))
EMPTY_WASM = BENCH / "empty-filter" / "target" / "empty_filter.opt.wasm"
LUA_SCRIPT = BENCH / "lua" / "seed.lua"
FIXTURES = ROOT / "fixtures"  # shared with the Rust tests and benches
SEED_CONFIG = FIXTURES / "configs" / "spec-example.json"
RULES50_CONFIG = FIXTURES / "configs" / "rules50.json"
REQUESTS = FIXTURES / "requests.json"


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


def expected_version(variant: str, req: dict) -> str | None:
    if variant in ("none", "empty-wasm"):
        return None
    if variant == "canary-50rules":  # no experiment matches; the final 10/90 split decides
        return "v2" if spec_bucket("rollout", split_key(req)) < 1000 else "v1"
    if req["seed"] != "split":
        return req["seed"]
    bucket = djb2_bucket if variant == "lua" else spec_bucket
    return "v2" if bucket("android", split_key(req)) < 5000 else "v1"


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


def wasm_filter(name: str, root_id: str, module: Path, configuration: str) -> dict:
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": name,
                "root_id": root_id,
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


def variant_filters(variant: str) -> list[dict]:
    if variant == "none":
        return []
    if variant == "lua":
        return [{
            "name": "envoy.filters.http.lua",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                "default_source_code": {"inline_string": LUA_SCRIPT.read_text()},
            },
        }]
    if variant == "empty-wasm":
        return [wasm_filter("empty-filter", "empty-filter", EMPTY_WASM, "")]
    if variant == "canary-seed":
        return [wasm_filter("canary-tagger", "canary-tagger", CANARY_WASM, SEED_CONFIG.read_text())]
    if variant == "canary-50rules":
        return [wasm_filter("canary-tagger", "canary-tagger", CANARY_WASM, RULES50_CONFIG.read_text())]
    raise ValueError(variant)


def bootstrap(variant: str, port: int, admin_port: int) -> dict:
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bench",
        "codec_type": "AUTO",
        # As on istio-ingressgateway: Envoy appends the peer to x-forwarded-for.
        "use_remote_address": True,
        "route_config": {
            "name": "bench",
            "virtual_hosts": [{
                "name": "all",
                "domains": ["*"],
                "routes": [{"match": {"prefix": "/"},
                            "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}],
            }],
        },
        "http_filters": variant_filters(variant) + [router],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": [{
            "name": "bench",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": hcm,
            }]}],
        }]},
    }


# --------------------------------------------------------------------------- processes

class Pinning:
    """Envoy on CPU 0, the load generator on CPU 1 (when the machine has two CPUs)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2

    def envoy(self, cmd: list[str]) -> list[str]:
        return ["taskset", "-c", "0", *cmd] if self.enabled else cmd

    def load(self, cmd: list[str]) -> list[str]:
        return ["taskset", "-c", "1", *cmd] if self.enabled else cmd


class Envoy:
    def __init__(self, envoy_bin: str, variant: str, pin: Pinning):
        self.variant = variant
        self.port = free_port()
        self.admin_port = free_port()
        self.config_path = WORK / f"{variant}.json"
        self.config_path.write_text(json.dumps(bootstrap(variant, self.port, self.admin_port), indent=1))
        self.log_path = WORK / f"{variant}.log"
        self.cmd = pin.envoy([envoy_bin, "-c", str(self.config_path), "--concurrency", "1",
                              "--disable-hot-restart", "--log-level", "warn"])
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(self.cmd, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                die(f"{self.variant}: Envoy exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                            return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        die(f"{self.variant}: Envoy not ready after {timeout:.0f}s; see {self.log_path}")

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


def measured(envoy: "Envoy", load) -> dict:
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
           streams: int, h1: bool = False, rps_per_client: float | None = None) -> dict:
    log_file = WORK / "h2load.log"
    log_file.unlink(missing_ok=True)
    cmd = ["h2load", "-t1", f"-c{connections}", f"-m{streams}", f"-D{seconds}", f"--log-file={log_file}"]
    if h1:
        cmd.append("--h1")
    if rps_per_client is not None:
        cmd.append(f"--rps={rps_per_client:.3f}")
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


# --------------------------------------------------------------------------- checks

def preflight(envoy: Envoy, requests: list[dict]) -> None:
    """Every request of the mix gets 200 and the decision the variant must make."""
    bad = []
    for r in requests:
        conn = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=5)
        try:
            conn.request("GET", r["path"], headers=dict(r["headers"]))
            resp = conn.getresponse()
            resp.read()
            got = resp.getheader(TAG)
        finally:
            conn.close()
        want = expected_version(envoy.variant, r)
        if resp.status != 200 or got != want:
            bad.append(f"  {r['name']}: status {resp.status}, {TAG} {got!r}, expected {want!r}")
    if bad:
        envoy.stop()
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


def summarize(rounds: list[dict], variants: list[str], memory: dict) -> dict:
    """Medians over rounds; ratios and differences are paired within a round first."""
    summary: dict = {}
    has_none = "none" in variants
    for v in variants:
        s: dict = {"rss_kb": memory[v]["VmRSS"], "hwm_kb": memory[v]["VmHWM"]}
        for phase in ("h1", "h2", "half"):
            rs = [r for r in rounds if phase in r[v]]
            if not rs:
                continue
            for m in ("rps", "p50_us", "p99_us", "envoy_cpu_us_per_req"):
                s[f"{phase}.{m}"] = med([r[v][phase][m] for r in rs])
                if has_none:
                    added = [r[v][phase][m] - r["none"][phase][m] for r in rs]
                    s[f"{phase}.{m}.ratio"] = med([r[v][phase][m] / r["none"][phase][m] for r in rs])
                    s[f"{phase}.{m}.added"] = med(added)
                    s[f"{phase}.{m}.added_range"] = [min(added), max(added)]
        summary[v] = s
    pairs = {}
    for a, b in [("canary-seed", "lua"), ("canary-seed", "empty-wasm"), ("canary-seed", "none"),
                 ("canary-50rules", "canary-seed"), ("empty-wasm", "none"), ("lua", "none")]:
        if a in variants and b in variants:
            for phase in ("h1", "h2"):
                pairs[f"{a} / {b}|{phase}"] = med([r[a][phase]["rps"] / r[b][phase]["rps"] for r in rounds])
    summary["pairs"] = pairs
    for key in ("cpu_pressure", "steal"):
        values = [rec[phase][key] for r in rounds for rec in r.values()
                  for phase in ("h1", "h2", "half") if phase in rec and rec[phase].get(key) is not None]
        summary[key] = {"median": med(values), "max": max(values) if values else None}
    return summary


def goals(result: dict) -> list[tuple[str, str, str]]:
    """Issue 8's goals: (goal, measured, verdict)."""
    s, out = result["summary"], []
    pairs = s["pairs"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    for b, want in (("lua", 1.10), ("empty-wasm", 0.95)):
        h1, h2 = pairs.get(f"canary-seed / {b}|h1"), pairs.get(f"canary-seed / {b}|h2")
        if h1 is not None:
            out.append((f"canary-seed throughput ≥ {want:.2f} × {b}",
                        f"{h1:.3f} × (HTTP/1.1), {h2:.3f} × (HTTP/2)", verdict(min(h1, h2) >= want)))
    seed = s.get("canary-seed", {})
    if "half.p99_us.added" in seed:
        added = seed["half.p99_us.added"]
        lo, hi = seed["half.p99_us.added_range"]
        out.append(("p99 added latency ≤ 50 µs at half of peak load",
                    f"{added:+.0f} µs (p99 {seed['half.p99_us']:.0f} µs vs none "
                    f"{s['none']['half.p99_us']:.0f} µs; per round {lo:+.0f} … {hi:+.0f} µs)",
                    verdict(added <= 50)))
    size = result["modules"].get("canary_tagger.wasm")
    if size:
        out.append(("module ≤ 512 KB after wasm-opt", f"{size / 1024:.0f} KiB ({size} bytes)",
                    verdict(size <= 512 * 1024)))
    return out


def fmt(x, spec=".0f"):
    return "–" if x is None else f"{x:{spec}}"


def markdown(result: dict) -> str:
    s, variants = result["summary"], result["variants"]
    cp, st = s["cpu_pressure"], s["steal"]
    out = [f"{result['rounds']} rounds × {len(variants)} variants, {result['seconds']} s per measurement, "
           f"variant order rotated each round; Envoy {result['tools']['envoy'].split('/')[1] if '/' in result['tools']['envoy'] else result['tools']['envoy']} "
           f"--concurrency 1{', pinned to CPU 0, load generator on CPU 1' if result['pinned'] else ''}. "
           f"Medians over rounds; ×none and +none are per-round ratios/differences to \"none\", then the median. "
           f"Machine CPU pressure during the measurements (PSI some): median {fmt(cp['median'] and cp['median'] * 100)} %, "
           f"max {fmt(cp['max'] and cp['max'] * 100)} %; steal: median {fmt(st['median'] and st['median'] * 100, '.1f')} %, "
           f"max {fmt(st['max'] and st['max'] * 100, '.1f')} %.", ""]
    titles = {"h1": f"HTTP/1.1 peak — {result['load']['h1']}",
              "h2": f"HTTP/2 peak — {result['load']['h2']}",
              "half": f"Half of peak — {result['load']['half']}"}
    for phase in ("h1", "h2", "half"):
        if f"{phase}.rps" not in s[variants[0]]:
            continue
        out.append(f"**{titles[phase]}**")
        out.append("")
        if phase == "half":
            hp = result["half_peak"]
            rates = ", ".join(f"{t:.0f}" for t in hp["target_rps_per_round"])
            fractions = ", ".join(f"{f:.2f}" for f in hp["fraction_of_median_peak"])
            out.append(f"Rounds 2–{result['rounds']}: every variant at the same constant offered rate, half of "
                       f"{hp['variant']}'s median HTTP/1.1 peak in the rounds before ({rates} req/s; "
                       f"{fractions} × its final median peak).")
            out.append("")
            out.append("| variant | req/s | p50 µs | p50 +none µs | p99 µs | p99 +none µs "
                       "| p99 +none, min … max over rounds | Envoy CPU µs/req | +none |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for v in variants:
                x = s[v]
                lo, hi = x.get("half.p99_us.added_range") or (None, None)
                spread = "–" if lo is None or v == "none" else f"{lo:+.0f} … {hi:+.0f}"
                out.append(f"| {v} | {fmt(x['half.rps'])} | {fmt(x['half.p50_us'])} "
                           f"| {fmt(x.get('half.p50_us.added'), '+.0f')} | {fmt(x['half.p99_us'])} "
                           f"| {fmt(x.get('half.p99_us.added'), '+.0f')} | {spread} "
                           f"| {fmt(x['half.envoy_cpu_us_per_req'], '.1f')} "
                           f"| {fmt(x.get('half.envoy_cpu_us_per_req.added'), '+.1f')} |")
        else:
            out.append("| variant | req/s | ×none | p50 µs | ×none | p99 µs | ×none | Envoy CPU µs/req | +none |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
            for v in variants:
                x = s[v]
                out.append(f"| {v} | {fmt(x[phase + '.rps'])} | {fmt(x.get(phase + '.rps.ratio'), '.3f')} "
                           f"| {fmt(x[phase + '.p50_us'])} | {fmt(x.get(phase + '.p50_us.ratio'), '.2f')} "
                           f"| {fmt(x[phase + '.p99_us'])} | {fmt(x.get(phase + '.p99_us.ratio'), '.2f')} "
                           f"| {fmt(x[phase + '.envoy_cpu_us_per_req'], '.1f')} "
                           f"| {fmt(x.get(phase + '.envoy_cpu_us_per_req.added'), '+.1f')} |")
        out.append("")
    out.append("**Envoy memory** (each variant's Envoy after all its measurements, /proc/<pid>/status)")
    out.append("")
    out.append("| variant | VmRSS MiB | VmHWM MiB |")
    out.append("|---|---:|---:|")
    for v in variants:
        out.append(f"| {v} | {s[v]['rss_kb'] / 1024:.1f} | {s[v]['hwm_kb'] / 1024:.1f} |")
    out.append("")
    if s["pairs"]:
        out.append("**Throughput ratios** (median of per-round ratios)")
        out.append("")
        out.append("| ratio | HTTP/1.1 | HTTP/2 |")
        out.append("|---|---:|---:|")
        for key in dict.fromkeys(k.split("|")[0] for k in s["pairs"]):
            out.append(f"| {key} | {fmt(s['pairs'].get(key + '|h1'), '.3f')} "
                       f"| {fmt(s['pairs'].get(key + '|h2'), '.3f')} |")
        out.append("")
    if result["modules"]:
        out.append("**Modules** (after wasm-opt, as `make wasm` ships them)")
        out.append("")
        out.append("| module | bytes | KiB |")
        out.append("|---|---:|---:|")
        for name, size in result["modules"].items():
            out.append(f"| {name} | {size} | {size / 1024:.1f} |")
        out.append("")
    g = goals(result)
    if g:
        out.append("**Goals of issue 8** (goals, not test thresholds)")
        out.append("")
        out.append("| goal | measured | |")
        out.append("|---|---|---|")
        out += [f"| {a} | {b} | {c} |" for a, b, c in g]
        out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=os.environ.get("BENCH_VARIANTS", ",".join(ALL_VARIANTS)),
                    help="comma-separated subset of " + ",".join(ALL_VARIANTS) + " (env BENCH_VARIANTS)")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 8)),
                    help="rounds (env BENCH_ROUNDS; default 8)")
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("BENCH_SECONDS", 3)),
                    help="duration of each measurement (env BENCH_SECONDS; default 3)")
    ap.add_argument("--no-half-peak", action="store_true", help="skip the constant-rate measurement")
    ap.add_argument("--no-pin", action="store_true", help="do not pin Envoy / load generator to CPUs")
    ap.add_argument("--envoy", default=os.environ.get("ENVOY", str(ROOT / ".venv" / "bin" / "envoy")))
    ap.add_argument("--render", metavar="RESULT_JSON",
                    help="only print the tables of a saved bench/results/*-envoy.json (summary recomputed)")
    args = ap.parse_args()
    if args.render:
        result = json.loads(Path(args.render).read_text())
        result["summary"] = summarize(result["raw"], result["variants"], result["memory_kb"])
        print(markdown(result))
        return

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in ALL_VARIANTS]
    if unknown or not variants:
        die(f"unknown variants {unknown}; choose from {ALL_VARIANTS}")
    if not 1 <= args.rounds <= 20 or not 1 <= args.seconds <= 60:
        die("rounds must be 1..20 and seconds 1..60")
    if not Path(args.envoy).exists():
        die(f"no Envoy at {args.envoy}: run `make venv`")
    for tool in ("wrk", "h2load"):
        if not shutil.which(tool):
            die(f"{tool} not installed (bench/run.sh installs it)")
    if any(v.startswith("canary") for v in variants) and not CANARY_WASM.exists():
        die(f"{CANARY_WASM} is missing: run `make wasm`, or pick variants with "
            "BENCH_VARIANTS=none,lua,empty-wasm")
    if "empty-wasm" in variants and not EMPTY_WASM.exists():
        die(f"{EMPTY_WASM} is missing: bench/run.sh builds it")

    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for old in WORK.glob("*.log"):
        old.unlink()
    requests = json.loads(REQUESTS.read_text())["requests"]
    h2_request = next(r for r in requests if r.get("h2load"))
    script = write_wrk_script(requests)
    pin = Pinning(not args.no_pin)
    started = time.monotonic()

    # Validate every bootstrap, then start one Envoy per variant (all pinned to the same CPU;
    # the idle ones cost nothing measurable) and preflight: each decides as expected.
    envoys = {v: Envoy(args.envoy, v, pin) for v in variants}
    for e in envoys.values():
        run([args.envoy, "--mode", "validate", "-c", str(e.config_path), "--log-level", "error"], timeout=60)
    log(f"validated {len(variants)} bootstraps")
    try:
        for e in envoys.values():
            e.start()
            preflight(e, requests)
            wrk(pin, e.url(), script, 1)  # warm-up: connections, V8 tier-up, Lua JIT
        log(f"preflight ok: every variant makes the expected decisions for {len(requests)} request kinds")

        # Half of peak: from round 2 on, every variant also gets the same constant offered
        # rate, half of the median HTTP/1.1 peak that canary-seed reached in the rounds before.
        half_peak = None
        if not args.no_half_peak and args.rounds >= 2:
            half_peak = {"variant": "canary-seed" if "canary-seed" in variants else variants[-1],
                         "connections": 10, "target_rps_per_round": []}

        # Rounds: every variant once per round, in a rotated order, so that a slow spell of
        # the machine hits all variants alike and the per-round ratios stay fair.
        rounds = []
        for i in range(args.rounds):
            order = variants[i % len(variants):] + variants[:i % len(variants)]
            record = {}
            target = None
            if half_peak and i >= 1:
                target = 0.5 * statistics.median(r[half_peak["variant"]]["h1"]["rps"] for r in rounds)
                half_peak["target_rps_per_round"].append(target)
            for v in order:
                e = envoys[v]
                rec = {"h1": measured(e, lambda: wrk(pin, e.url(), script, args.seconds)),
                       "h2": measured(e, lambda: h2load(pin, e.url(h2_request["path"]), h2_request["headers"],
                                                        args.seconds, connections=50, streams=10))}
                if target:
                    rate = target / half_peak["connections"]
                    rec["half"] = measured(e, lambda: h2load(
                        pin, e.url(h2_request["path"]), h2_request["headers"], args.seconds,
                        connections=half_peak["connections"], streams=1, h1=True, rps_per_client=rate))
                record[v] = rec
                half_txt = f" | half peak p99 {rec['half']['p99_us']:5.0f} µs" if target else ""
                log(f"round {i + 1}/{args.rounds} {v:14s} h1 {rec['h1']['rps']:6.0f} req/s "
                    f"{rec['h1']['envoy_cpu_us_per_req']:5.1f} µs CPU/req | h2 {rec['h2']['rps']:6.0f} req/s "
                    f"{rec['h2']['envoy_cpu_us_per_req']:5.1f} µs CPU/req{half_txt}")
            rounds.append(record)
        memory = {v: e.memory_kb() for v, e in envoys.items()}
    finally:
        for e in envoys.values():
            e.stop()

    modules = {}
    if CANARY_WASM.exists() and any(v.startswith("canary") for v in variants):
        modules["canary_tagger.wasm"] = CANARY_WASM.stat().st_size
    if "empty-wasm" in variants:
        modules["empty_filter.wasm"] = EMPTY_WASM.stat().st_size

    result = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "tools": tool_versions(args.envoy),
        "variants": variants,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "pinned": pin.enabled,
        "load": {"h1": "wrk -t1 -c50 --latency, request mix of fixtures/requests.json",
                 "h2": f"h2load -t1 -c50 -m10, request {h2_request['name']!r}",
                 "half": "h2load --h1 -t1 -c10 -m1 --rps (constant rate), request "
                         f"{h2_request['name']!r}"},
        "half_peak": half_peak,
        "modules": modules,
        "raw": rounds,
        "memory_kb": memory,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    result["summary"] = summarize(rounds, variants, memory)
    if half_peak:
        half_peak["fraction_of_median_peak"] = [t / result["summary"][half_peak["variant"]]["h1.rps"]
                                                for t in half_peak["target_rps_per_round"]]
    table = markdown(result)
    stamp = os.environ.get("BENCH_STAMP", time.strftime("%Y%m%d-%H%M%S"))
    (RESULTS / f"{stamp}-envoy.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{stamp}-envoy.md").write_text(table + "\n")
    print()
    print(table)
    log(f"raw results: {RESULTS / (stamp + '-envoy.json')} (Envoy part took {result['elapsed_s']:.0f} s)")


if __name__ == "__main__":
    main()
