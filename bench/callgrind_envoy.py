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
KEEP_DUMPS = False
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
DEFAULT_VARIANTS = ["none", "empty-wasm", "empty-wasm-lean", "abi-floor", "lua", "canary-norules", "canary-lean9",
                    "canary-seed", "lua-grpc", "canary-grpc"]
# The baselines every variant is also reported against (instructions of the baseline over
# the variant's: the throughput ratio of a CPU-bound worker).
BASELINES = ["abi-floor", "empty-wasm", "empty-wasm-lean"]


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


def self_cost_by_object(text: str) -> dict[str, int]:
    """Instructions executed in each object (ELF file, or `???`: code without one, i.e. V8's
    generated code, the Wasm module's among it) over a callgrind dump: the self cost of
    every function, summed by the object it lies in. A cost line right after `calls=` is the
    call's inclusive cost and is not counted again. The sum is the dump's `totals`, which
    exceeds its `summary` (what `instructions` reports) by a fixed amount per dump (~0.3k
    per request at -n 1000): compare objects between variants, not with the summary."""
    names: dict[str, str] = {}
    by_object: dict[str, int] = {}
    current, after_call = "???", False
    for line in text.splitlines():
        if not line:
            continue
        head = line[0]
        if head.isdigit() or head in "+-*":
            if after_call:
                after_call = False
                continue
            fields = line.split()
            if len(fields) >= 2:
                by_object[current] = by_object.get(current, 0) + int(fields[1])
            continue
        key, _, value = line.partition("=")
        if key in ("ob", "cob"):  # an object's name is given where its id first appears
            m = re.match(r"\((\d+)\)(?: (.*))?", value)
            name = value
            if m:
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                name = names.get(m.group(1), "???")
            if key == "ob":
                current = name
        elif key == "calls":
            after_call = True
    return {Path(k).name or k: v for k, v in by_object.items()}


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

    def instructions(self, label: str, timeout: float = 300) -> tuple[int, dict[str, int]]:
        """Dumps the counters since the last zeroing and returns the instruction total and
        its split by object (see `self_cost_by_object`). An idle Envoy handles the dump
        request at its next timer (stats flush, within ~5 s)."""
        self.control("-d", label)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path in glob.glob(f"{self.out}.*"):
                text = Path(path).read_text(errors="replace")
                if re.search(rf"^desc: Trigger: (?:dump|Client Request:) {re.escape(label)}$", text, re.M):
                    m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
                    if KEEP_DUMPS:
                        os.rename(path, WORK / f"{label}.dump")
                    else:
                        os.unlink(path)
                    if m:
                        return int(m.group(1)), self_cost_by_object(text)
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
    global KEEP_DUMPS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    ap.add_argument("--loads", default="h1,h2,grpc")
    ap.add_argument("-n", type=int, default=1000, help="requests per measurement (default 1000)")
    ap.add_argument("--warmup", type=int, default=1000, help="requests per load before measuring")
    ap.add_argument("--canary-modules", default="",
                    help="LABEL=PATH,...: measure every canary-* variant with each of these modules")
    ap.add_argument("--canary-configs", default="",
                    help="LABEL=PATH,...: also measure dist/canary_tagger.wasm with each of these "
                         "plugin configs (variant canary@LABEL, the browser loads, no decision "
                         "check): configs that differ by one feature price that feature")
    ap.add_argument("--floor-modules", default="",
                    help="LABEL=PATH,...: measure abi-floor with each of these modules as well")
    ap.add_argument("--hostcalls", action="store_true",
                    help="also measure bench/hostcall-filter making each call set of HOSTCALLS (h1 load)")
    ap.add_argument("--hostcall-sets", default="",
                    help="LABEL=CALLS;...: extra call sets for --hostcalls (see hostcall-filter/src/lib.rs)")
    ap.add_argument("--no-check", action="store_true",
                    help="skip the decision check (each variant under a plain Envoy first, as make bench)")
    ap.add_argument("--keep-dumps", action="store_true",
                    help="keep each callgrind dump as bench/work/callgrind/<variant>-<load>.dump")
    ap.add_argument("--envoy", default=os.environ.get("ENVOY", str(eb.ROOT / ".venv" / "bin" / "envoy")))
    args = ap.parse_args()
    KEEP_DUMPS = args.keep_dumps
    for tool in ("valgrind", "callgrind_control", "h2load"):
        if not shutil.which(tool):
            eb.die(f"{tool} not installed (Debian packages valgrind, nghttp2-client)")
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "grpc-body.bin").write_bytes(eb.GRPC_BODY)
    requests = json.loads(eb.REQUESTS.read_text())["requests"]
    all_variants = eb.variants(requests)
    all_loads = loads(requests)
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]

    def with_modules(option: str, applies, set_module) -> None:
        """Every chosen variant `applies` accepts, once per LABEL=PATH of `option`."""
        nonlocal chosen
        modules = dict(m.split("=", 1) for m in option.split(",") if m.strip())
        if not modules:
            return
        measured = []
        for v in chosen:
            if not applies(v):
                measured.append(v)
                continue
            for label, path in modules.items():
                if not Path(path).is_file():
                    eb.die(f"no module {path}")
                set_module(Path(path).resolve())
                all_variants[f"{v}@{label}"] = eb.variants(requests)[v]
                measured.append(f"{v}@{label}")
        chosen = measured

    canary_wasm, floor_wasm = eb.CANARY_WASM, eb.FLOOR_WASM
    with_modules(args.canary_modules, lambda v: v.startswith("canary-"),
                 lambda p: setattr(eb, "CANARY_WASM", p))
    # The floor itself stays in the run: the baseline of every ratio.
    with_modules(args.floor_modules, lambda v: v == "abi-floor",
                 lambda p: setattr(eb, "FLOOR_WASM", p))
    if args.floor_modules and "abi-floor" in [v.split("@")[0] for v in chosen]:
        eb.FLOOR_WASM = floor_wasm
        all_variants["abi-floor"] = eb.variants(requests)["abi-floor"]
        chosen.insert(next(i for i, v in enumerate(chosen) if v.startswith("abi-floor@")), "abi-floor")
    eb.CANARY_WASM, eb.FLOOR_WASM = canary_wasm, floor_wasm
    for label, path in (c.split("=", 1) for c in args.canary_configs.split(",") if c.strip()):
        if not Path(path).is_file():
            eb.die(f"no config {path}")
        name = f"canary@{label}"
        all_variants[name] = eb.Variant([eb.wasm_filter("canary-tagger", eb.CANARY_WASM,
                                                        Path(path).read_text())])
        chosen.append(name)
    load_names = [x.strip() for x in args.loads.split(",") if x.strip()]
    if args.hostcalls:
        if not HOSTCALL_WASM.is_file():
            eb.die(f"{HOSTCALL_WASM} is missing: make bench-modules builds it")
        sets = dict(HOSTCALLS)
        sets.update(dict(x.split("=", 1) for x in args.hostcall_sets.split(";") if x.strip()))
        for label, calls in sets.items():
            name = f"hostcall:{label}"
            all_variants[name] = eb.Variant([eb.wasm_filter("hostcall", HOSTCALL_WASM, calls)])
            chosen.append(name)

    def job_variant(v: str) -> str:
        if v.startswith("hostcall:"):
            return "none"
        return "canary-lean9" if v.startswith("canary@") else v.split("@")[0]

    for v in chosen:
        if v not in all_variants or all_variants[v].upstream:
            eb.die(f"unknown or upstream variant {v!r}")
    for x in load_names:
        if x not in all_loads:
            eb.die(f"unknown load {x!r}; choose from {list(all_loads)}")
    envoy_bin = envoy_binary(args.envoy)

    if not args.no_check:
        # As make bench: each variant must make the expected decisions (the tag and grpcsvc
        # the router sees), so a prototype module is priced only if it behaves the same.
        kinds = eb.check_requests(requests)
        for v in chosen:
            variant = all_variants[v]
            plain = eb.Envoy(args.envoy, f"check-{v}",
                             lambda port, admin, variant=variant: eb.bootstrap(variant, port, admin, None),
                             lambda cmd: cmd)
            try:
                plain.start()
                eb.preflight(plain, variant, kinds)
            finally:
                plain.stop()
        eb.log(f"decision check ok: {len(chosen)} variants")

    results: dict[str, dict[str, float]] = {}
    objects: dict[str, dict[str, dict[str, float]]] = {}
    for v in chosen:  # one at a time: valgrind is slow enough without a second one beside it
        port, admin = eb.free_port(), eb.free_port()
        cg = Callgrind(envoy_bin, v, eb.bootstrap(all_variants[v], port, admin, None))
        try:
            cg.wait_ready(admin)
            results[v], objects[v] = {}, {}
            for x in load_names:
                if job_variant(v) not in eb.JOBS[x].variants:
                    continue  # the same pairs as make bench: browser variants get no gRPC load
                h2load(port, args.warmup, all_loads[x])
                cg.control("-z")
                h2load(port, args.n, all_loads[x])
                total, by_object = cg.instructions(f"{v}-{x}")
                results[v][x] = total / args.n
                objects[v][x] = {k: n / args.n for k, n in sorted(by_object.items(), key=lambda kv: -kv[1])}
            eb.log(f"{v}: " + ", ".join(f"{x} {n:,.0f}" for x, n in results[v].items()))
        finally:
            cg.stop()

    print()
    print(f"Instructions per request (callgrind, {args.n} requests after {args.warmup} of warm-up; "
          f"+none is the difference to no filter, for hostcall:* to hostcall:nothing; ×B is B's "
          f"instructions over the variant's, the throughput ratio of a CPU-bound worker)")
    print()
    baselines = [b for b in BASELINES if b in results]
    print("| variant | load | instructions | +none | " + " | ".join(f"×{b}" for b in baselines) + " |")
    print("|---|---|---:|---:|" + "---:|" * len(baselines))
    for x in load_names:
        for v in chosen:
            value = results[v].get(x)
            if value is None:
                continue
            baseline = "hostcall:nothing" if v.startswith("hostcall:") else "none"
            base = results.get(baseline, {}).get(x)
            cells = [f"{value:,.0f}", "–" if base is None else f"{value - base:+,.0f}"]
            for b in baselines:
                ref = results[b].get(x)
                cells.append("–" if ref is None else f"{ref / value:.3f}")
            print(f"| {v} | {x} | " + " | ".join(cells) + " |")
    out = eb.RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}-instructions.json"
    eb.RESULTS.mkdir(parents=True, exist_ok=True)
    modules = {"canary_tagger.wasm": eb.CANARY_WASM.stat().st_size} if eb.CANARY_WASM.is_file() else {}
    out.write_text(json.dumps({"n": args.n, "warmup": args.warmup, "variants": chosen,
                               "modules": modules, "results": results, "by_object": objects},
                              indent=1) + "\n")
    eb.log(f"raw results: {out}")


if __name__ == "__main__":
    main()
