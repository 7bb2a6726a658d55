#!/usr/bin/env python3
"""Turns criterion's estimates (target/criterion/*/new/) into the engine table of
BENCHMARKS.md: nanoseconds per decision, median with its 95 % confidence interval.
Writes bench/results/<BENCH_STAMP>-criterion.{json,md} and prints the table."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
RESULTS = ROOT / "bench" / "results"

ORDER = ["decide/seed/mix", "decide/seed/mix-serialized", "decide/rules50/mix", "decide/seed/tester", "decide/seed/chrome-desktop",
         "decide/seed/android-firefox-uid", "decide/seed/iphone-safari", "hash/bucket",
         "config/compile/seed"]
WHAT = {
    "decide/seed/mix": "seed config (SPEC §2), the 21-request mix of fixtures/requests.json",
    "decide/seed/mix-serialized": "seed config, same mix, read as the filter reads it (Envoy's serialized header map)",
    "decide/rules50/mix": "50-rule config, same mix (every request walks all 50 rules)",
    "decide/seed/tester": "seed, first rule matches (cookie user=tester)",
    "decide/seed/chrome-desktop": "seed, regex rule .*Chrome.* matches",
    "decide/seed/android-firefox-uid": "seed, deepest path: all rules, then the split hash",
    "decide/seed/iphone-safari": "seed, no rule matches (default version)",
    "hash/bucket": "SPEC §3 hash alone (salt \"android\", key \"alice\")",
    "config/compile/seed": "compiling the seed config (per configuration push, not per request)",
}
GOAL_NS = 1000.0  # issue 8: engine ≤ 1 µs per decision for the seed config, natively


def main() -> None:
    found = {}
    for bench_json in sorted((TARGET / "criterion").glob("*/new/benchmark.json")):
        meta = json.loads(bench_json.read_text())
        est = json.loads((bench_json.parent / "estimates.json").read_text())
        median = est["median"]
        found[meta["full_id"]] = {
            "median_ns": median["point_estimate"],
            "ci95_ns": [median["confidence_interval"]["lower_bound"],
                        median["confidence_interval"]["upper_bound"]],
            "mean_ns": est["mean"]["point_estimate"],
        }
    if not found:
        raise SystemExit(f"no criterion results under {TARGET / 'criterion'}")
    ids = [i for i in ORDER if i in found] + sorted(set(found) - set(ORDER))
    lines = ["| benchmark | what | ns per iteration (median) | 95 % CI |", "|---|---|---:|---:|"]
    for i in ids:
        r = found[i]
        lines.append(f"| `{i}` | {WHAT.get(i, '')} | {r['median_ns']:,.0f} | "
                     f"{r['ci95_ns'][0]:,.0f} – {r['ci95_ns'][1]:,.0f} |")
    seed = found.get("decide/seed/mix")
    if seed:
        verdict = "met" if seed["median_ns"] <= GOAL_NS else "NOT met"
        lines += ["", f"Goal engine ≤ 1 µs per decision (seed config, native): {verdict} "
                      f"({seed['median_ns']:,.0f} ns on the mix)."]
    table = "\n".join(lines)
    stamp = os.environ.get("BENCH_STAMP", time.strftime("%Y%m%d-%H%M%S"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stamp}-criterion.json").write_text(json.dumps(found, indent=1) + "\n")
    (RESULTS / f"{stamp}-criterion.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
