#!/usr/bin/env python3
"""Instructions per request through a real Envoy, counted by valgrind's callgrind.

Throughput on a shared 2-core machine moves by a third from one minute to the next; the
number of instructions Envoy executes for a request does not. This runs the variants of
bench/envoy_bench.py under callgrind (same bootstraps, same modules), warms each up, then
for each load zeroes the counters, sends exactly N requests with h2load, dumps, and divides.
Repeated runs agree to within ~0.1 %, whatever else the machine is doing, so a change of a
few hundred instructions per request is visible (a wrk run resolves ~1.5 µs, i.e. ~10k).

  bench/callgrind_envoy.py [--variants none,empty-wasm,canary-seed] [--loads h1,h2,grpc] [-n 1000]
  bench/callgrind_envoy.py --canary-modules before=old.wasm,after=dist/canary_tagger.wasm
      (each canary-* variant once per module: how BENCHMARKS.md measures one change at a time)
  bench/callgrind_envoy.py --variants none --loads h1 --hostcalls
      (the price of single proxy-wasm host calls: bench/hostcall-filter making each call of
      HOSTCALLS below on every request, against the same filter making none)

Valgrind runs Envoy about 50 times slower: each variant takes a minute or two. Counts are
for the whole Envoy process (all threads) over the window, so they include the listener,
codec and router work, exactly what a filter adds to or saves from. Not part of `make
test`; `make bench-instructions` runs the default set. Loopback only; every wait bounded.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import envoy_bench as eb  # noqa: E402  (the variants and bootstraps, written once)

WORK = eb.BENCH / "work" / "callgrind"
HOSTCALL_WASM = eb.BENCH / "hostcall-filter" / "target" / "hostcall_filter.wasm"
# label -> the calls bench/hostcall-filter makes per request (its src/lib.rs lists them).
HOSTCALLS = {
    "nothing": "",
    "map": "map",
    "map-twice": "map map",
    "get-present": "get:user-agent",
    "get-absent": "get:x-not-sent",
    "get-four": "get:user-agent get:accept get:cookie get:x-forwarded-for",
    "add": "add:x-canary-version",
    "add-two": "add:x-canary-version add:baggage",
    "replace-absent": "replace:x-canary-version",
    "replace-present": "replace:user-agent",
    "counter": "counter",
    "property-source-address": "property:source.address",
}
DEFAULT_VARIANTS = ["none", "empty-wasm", "empty-wasm-lean", "lua", "canary-norules", "canary-seed",
                    "lua-grpc", "canary-grpc"]


def envoy_binary(envoy: str) -> str:
    """valgrind must run the real binary, not the venv's Python launcher."""
    script = Path(envoy)
    text = script.read_bytes()[:2]
    if text != b"#!":
        return envoy
    found = glob.glob(str(script.resolve().parent.parent / "lib" / "python3*" / "site-packages" /
                          "envoy" / "_bin" / "envoy"))
    if not found:
        eb.die(f"cannot find the Envoy binary behind {envoy}")
    return found[0]


def loads(requests: list[dict]) -> dict[str, list[str]]:
    deep = next(r for r in requests if r.get("h2load"))
    headers = [a for k, v in deep["headers"] for a in ("-H", f"{k}: {v}")]
    grpc = [a for k, v in eb.GRPC_HEADERS for a in ("-H", f"{k}: {v}")]
    return {
        "h1": ["--h1", *headers, "PATH", deep["path"]],
        "h2": [*headers, "PATH", deep["path"]],
        "grpc": [*grpc, "--data", str(WORK / "grpc-body.bin"), "PATH", eb.GRPC_PATH],
    }


def h2load(port: int, n: int, spec: list[str]) -> None:
    args, path = spec[:spec.index("PATH")], spec[spec.index("PATH") + 1]
    out = subprocess.run(["h2load", "-n", str(n), "-c", "4", "-t1", *args, f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=900).stdout
    if f"{n} succeeded" not in out:
        eb.die(f"h2load did not complete {n} requests:\n{out}")


class Callgrind:
    def __init__(self, envoy_bin: str, name: str, config: dict):
        self.name = name
        self.out = WORK / f"{name}.callgrind"
        for old in glob.glob(f"{self.out}*"):
            os.unlink(old)
        self.config = WORK / f"{name}.json"
        self.config.write_text(json.dumps(config))
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}", "--smc-check=all-non-file",
             envoy_bin, "-c", str(self.config), "--concurrency", "1", "--disable-hot-restart",
             "--log-level", "warn"],
            stdout=open(WORK / f"{name}.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, admin_port: int, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                eb.die(f"{self.name}: Envoy under valgrind exited; see {WORK / (self.name + '.log')}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(1)
        eb.die(f"{self.name}: not ready under valgrind after {timeout:.0f} s")

    def control(self, *args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(self.proc.pid)], capture_output=True, timeout=120)

    def instructions(self, label: str, timeout: float = 300) -> int:
        """Dumps the counters since the last zeroing and returns the instruction total. An
        idle Envoy handles the dump request at its next timer (stats flush, within ~5 s)."""
        self.control("-d", label)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path in glob.glob(f"{self.out}.*"):
                text = Path(path).read_text(errors="replace")
                if re.search(rf"^desc: Trigger: (?:dump|Client Request:) {re.escape(label)}$", text, re.M):
                    m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
                    os.unlink(path)
                    if m:
                        return int(m.group(1))
            time.sleep(0.5)
        eb.die(f"{self.name}: callgrind did not dump '{label}'")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    ap.add_argument("--loads", default="h1,h2,grpc")
    ap.add_argument("-n", type=int, default=1000, help="requests per measurement (default 1000)")
    ap.add_argument("--warmup", type=int, default=1000, help="requests per load before measuring")
    ap.add_argument("--canary-modules", default="",
                    help="LABEL=PATH,...: measure every canary-* variant with each of these modules")
    ap.add_argument("--hostcalls", action="store_true",
                    help="also measure bench/hostcall-filter making each call set of HOSTCALLS (h1 load)")
    ap.add_argument("--envoy", default=os.environ.get("ENVOY", str(eb.ROOT / ".venv" / "bin" / "envoy")))
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_control", "h2load"):
        if not shutil.which(tool):
            eb.die(f"{tool} not installed (Debian packages valgrind, nghttp2-client)")
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "grpc-body.bin").write_bytes(eb.GRPC_BODY)
    requests = json.loads(eb.REQUESTS.read_text())["requests"]
    all_variants = eb.variants(requests)
    all_loads = loads(requests)
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    modules = dict(m.split("=", 1) for m in args.canary_modules.split(",") if m.strip())
    if modules:
        measured = []
        for v in chosen:
            if not v.startswith("canary-"):
                measured.append(v)
                continue
            for label, path in modules.items():
                if not Path(path).is_file():
                    eb.die(f"no module {path}")
                eb.CANARY_WASM = Path(path).resolve()
                all_variants[f"{v}@{label}"] = eb.variants(requests)[v]
                measured.append(f"{v}@{label}")
        chosen = measured
    load_names = [x.strip() for x in args.loads.split(",") if x.strip()]
    if args.hostcalls:
        if not HOSTCALL_WASM.is_file():
            eb.die(f"{HOSTCALL_WASM} is missing: make bench-modules builds it")
        for label, calls in HOSTCALLS.items():
            name = f"hostcall:{label}"
            all_variants[name] = eb.Variant([eb.wasm_filter("hostcall", HOSTCALL_WASM, calls)])
            chosen.append(name)

    def job_variant(v: str) -> str:
        return "none" if v.startswith("hostcall:") else v.split("@")[0]

    for v in chosen:
        if v not in all_variants or all_variants[v].upstream:
            eb.die(f"unknown or upstream variant {v!r}")
    for x in load_names:
        if x not in all_loads:
            eb.die(f"unknown load {x!r}; choose from {list(all_loads)}")
    envoy_bin = envoy_binary(args.envoy)

    results: dict[str, dict[str, float]] = {}
    for v in chosen:  # one at a time: valgrind is slow enough without a second one beside it
        port, admin = eb.free_port(), eb.free_port()
        cg = Callgrind(envoy_bin, v, eb.bootstrap(all_variants[v], port, admin, None))
        try:
            cg.wait_ready(admin)
            results[v] = {}
            for x in load_names:
                if job_variant(v) not in eb.JOBS[x].variants:
                    continue  # the same pairs as make bench: browser variants get no gRPC load
                h2load(port, args.warmup, all_loads[x])
                cg.control("-z")
                h2load(port, args.n, all_loads[x])
                results[v][x] = cg.instructions(f"{v}-{x}") / args.n
            eb.log(f"{v}: " + ", ".join(f"{x} {n:,.0f}" for x, n in results[v].items()))
        finally:
            cg.stop()

    print()
    print(f"Instructions per request (callgrind, {args.n} requests after {args.warmup} of warm-up; "
          f"+none is the difference to no filter; for hostcall:* to hostcall:nothing)")
    print()
    print("| variant | " + " | ".join(f"{x} | +none" for x in load_names) + " |")
    print("|---|" + "---:|---:|" * len(load_names))
    for v in chosen:
        cells = []
        for x in load_names:
            baseline = "hostcall:nothing" if v.startswith("hostcall:") else "none"
            value, base = results[v].get(x), results.get(baseline, {}).get(x)
            cells.append("–" if value is None else f"{value:,.0f}")
            cells.append("–" if value is None or base is None else f"{value - base:+,.0f}")
        print(f"| {v} | " + " | ".join(cells) + " |")
    out = eb.RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}-instructions.json"
    eb.RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"n": args.n, "warmup": args.warmup, "results": results}, indent=1) + "\n")
    eb.log(f"raw results: {out}")


if __name__ == "__main__":
    main()
