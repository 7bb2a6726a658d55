"""A rollout on a gateway, for the tests of `canary-tagger status` and `watch`: an Envoy
whose clusters are named and tagged as Istio names and tags them (the commands match
clusters to versions by name), a configuration with a fixed rule, a ramped split and the
default, and known traffic through it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from .envoy_process import EnvoyUnderTest
from .upstreams import STATUS_HEADER

CLUSTERS = {
    "v1": "outbound|8080|v1|echo.shop.svc.cluster.local",
    "v2": "outbound|8080||echo-v2.shop.svc.cluster.local",
    "v3": "outbound|8080|v3|echo.shop.svc.cluster.local",
}
# Istio's bootstrap tags for cluster stats (its envoy_bootstrap.json): the whole cluster
# name as `cluster_name`, `upstream_rq_5xx` as `upstream_rq{response_code_class="5xx"}`.
ISTIO_CLUSTER_TAGS = [
    {"tag_name": "cluster_name", "regex": r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"},
    {"tag_name": "response_code_class", "regex": r"_rq(_(\dxx))$"},
]
class IstioNamedEnvoy(EnvoyUnderTest):
    """EnvoyUnderTest with Istio's cluster names and cluster stats tags."""

    def write_config(self) -> Path:
        path = super().write_config()
        bootstrap = yaml.safe_load(path.read_text())
        for cluster in bootstrap["static_resources"]["clusters"]:
            if cluster["name"] in CLUSTERS:
                cluster["name"] = cluster["load_assignment"]["cluster_name"] = CLUSTERS[cluster["name"]]
        for listener in bootstrap["static_resources"]["listeners"]:
            manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
            for host in manager["route_config"]["virtual_hosts"]:
                for route in host["routes"]:
                    route["route"]["cluster"] = CLUSTERS.get(route["route"]["cluster"], route["route"]["cluster"])
        bootstrap.setdefault("stats_config", {}).setdefault("stats_tags", []).extend(ISTIO_CLUSTER_TAGS)
        path.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
        return path


def plugin_config() -> dict:
    # The ramp started an hour ago and lasts ten years: its gauge reads 50 for the test.
    start = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "versions": ["v1", "v2", "v3"],
        "default_version": "v1",
        "rules": [
            {"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "version": "v2"},
            {"name": "beta", "match": {"header": "x-beta", "exact": "1"},
             "split": {"weights": [{"version": "v3", "percent": 50}, {"version": "v1", "percent": 50}],
                       "ramp": {"start": start, "duration_s": 315360000, "to": 100},
                       "key": ["header:x-user"]}},
        ],
        "sticky_cookie": {"name": "canary-uid"},
    }


def send_traffic(envoy: EnvoyUnderTest) -> dict:
    """Known traffic; returns the JSON `status` must print (its counting fields)."""
    beta = {"v1": 0, "v3": 0}
    for i in range(3):
        assert envoy.request("/", headers={"cookie": "user=tester"}).body["version"] == "v2"
    for i in range(4):  # a spoofed tag, stripped: the default decides
        assert envoy.request("/", headers={"x-canary-version": "v3"}).body["version"] == "v1"
    for i in range(2):  # the default's upstream fails
        assert envoy.request("/", headers={STATUS_HEADER: "503"}).status == 503
    for i in range(40):
        beta[envoy.request("/", headers={"x-beta": "1", "x-user": f"user-{i}"}).body["version"]] += 1
    for i in range(2):  # no key: a sticky id is issued
        reply = envoy.request("/", headers={"x-beta": "1"})
        beta[reply.body["version"]] += 1
        assert "canary-uid=" in reply.headers.get("set-cookie", "")
    assert beta["v3"] > 0 and beta["v1"] > 0, beta
    total = 3 + 4 + 2 + 42
    counts = {"v1": 6 + beta["v1"], "v2": 3, "v3": beta["v3"]}
    return {
        "versions": {v: {"requests": n, "share": round(n / total, 3)} for v, n in counts.items()},
        "rules": [{"rule": "beta", "versions": {v: n for v, n in beta.items() if n}},
                  {"rule": "testers", "versions": {"v2": 3}}],
        "decided_by": {"default": 6, "rule": 45},
        "ramps": [{"rule": "beta", "percent": 50}],
        "counters": {"client_tag_stripped": 4, "sticky_id_issued": 2, "sticky_id_rejected": 0,
                     "config_rejected": 0},
        "upstream": {"v1": {"requests": counts["v1"], "5xx": 2}, "v2": {"requests": 3, "5xx": 0},
                     "v3": {"requests": counts["v3"], "5xx": 0}},
    }
