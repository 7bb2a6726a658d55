#!/usr/bin/env python3
"""Writes rules50.json: the 50-rule worst case for bench/run.sh and benches/engine.rs.

Same preamble as seed.json (XFF client IP, spoof guard, gRPC normalization, sticky cookie,
response header, baggage), then 49 rules that the benchmark's requests do not match -- a
realistic mix of cookie, header, regex, CIDR, query and all/any conditions, as a gateway
that has accumulated many experiments would carry -- and a final 10/90 split that decides.
So every request walks all 50 rules. Run it again after editing; the output is committed.
"""
import json
import pathlib


def rule(i):
    n = f"{i:02d}"
    kind = i % 7
    if kind == 0:
        m = {"cookie": f"exp-{n}", "exact": "on"}
    elif kind == 1:
        m = {"header": "x-tenant", "exact": f"tenant-{n}"}
    elif kind == 2:
        m = {"header": "user-agent", "regex": f".*(SamsungBrowser|YaBrowser)/{i}\\..*"}
    elif kind == 3:
        m = {"source_ip": [f"198.51.100.{i}/32", f"2001:db8:{i:x}::/48", f"100.{64 + i}.0.0/16"]}
    elif kind == 4:
        m = {"query": "campaign", "exact": f"spring-{n}"}
    elif kind == 5:
        m = {"all": [{"header": "x-region", "exact": f"eu-{n}"},
                     {"cookie": "plan", "exact": "pro"}]}
    else:
        m = {"any": [{"header": "x-client-version", "prefix": f"9.{i}."},
                     {"header": ":authority", "suffix": f".tenant-{n}.example", "ignore_case": True}]}
    return {"name": f"experiment-{n}", "match": m, "version": "v3" if i % 2 else "v2"}


seed = json.loads((pathlib.Path(__file__).parent / "seed.json").read_text())
config = {k: v for k, v in seed.items() if k != "rules"}
config["rules"] = [rule(i) for i in range(1, 50)] + [{
    "name": "rollout",
    "match": {"header": ":path", "prefix": "/"},
    "split": {"weights": [{"version": "v2", "percent": 10}, {"version": "v1", "percent": 90}],
              "key": ["cookie:uid", "header:x-user-id", "source_ip"]},
}]
assert len(config["rules"]) == 50
out = pathlib.Path(__file__).parent / "rules50.json"
# One rule per line: readable and diff-friendly.
head = json.dumps({k: v for k, v in config.items() if k != "rules"}, indent=2)
rules = ",\n".join("    " + json.dumps(r) for r in config["rules"])
out.write_text(head[:-2] + ',\n  "rules": [\n' + rules + "\n  ]\n}\n")
json.loads(out.read_text())
print(f"wrote {out} ({len(config['rules'])} rules)")
