"""SPEC §1.7: decisions, normalizations, stripped spoofed tags and issued sticky ids are
counted as proxy-wasm counters, visible in Envoy's /stats (under `wasmcustom.`, labels
written into the name) and /stats/prometheus (labelled series, with the stats tags of
envoyfilter/metrics/stats-tags.yaml). Names as in src/metrics.rs and docs/metrics.md;
test_metrics_documented.py pins every one of them."""

from canary_e2e.assertions import assert_answered, wasm_counters
from canary_e2e.ecds import parse_prometheus

COUNTED = {
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    "normalize": [{"header": "grpcsvc", "allowed": ["v1", "v2"], "default": "v1",
                   "when": {"header": "content-type", "prefix": "application/grpc"}}],
    "rules": [
        {"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "version": "v2"},
        {"name": "android", "match": {"header": "user-agent", "contains": "Android"},
         "split": {"weights": [{"version": "v3", "percent": 50}, {"version": "v1", "percent": 50}],
                   "key": ["cookie:uid"]}},
    ],
    "sticky_cookie": {"name": "canary-uid"},
}

# (request headers, version) — sent once each over HTTP/1.1 and once over HTTP/2
TRAFFIC = [
    ({"cookie": "user=tester"}, "v2"),
    ({"cookie": "user=tester", "x-canary-version": "v3"}, "v2"),  # spoofed tag stripped
    ({"x-canary-version": "v2"}, "v1"),                           # spoofed tag stripped
    ({"content-type": "application/grpc"}, "v1"),                 # grpcsvc normalized
    ({"content-type": "application/grpc", "grpcsvc": "v9"}, "v1"),  # grpcsvc normalized
    ({"content-type": "application/grpc", "grpcsvc": "v2"}, "v1"),  # allowed: untouched
    ({"user-agent": "Android"}, None),                            # sticky id issued
    ({}, "v1"),
]
REQUESTS = "canary_tagger_requests"  # + labels + "total"
EXPECTED_DELTAS = {  # per protocol pass
    f"{REQUESTS}.decided_by=.=rule;.;rule=.=testers;.;version=.=v2;.;total": 2,
    f"{REQUESTS}.decided_by=.=default;.;version=.=v1;.;total": 5,
    "canary_tagger_client_tag_stripped_total": 2,
    "canary_tagger_normalized.header=.=grpcsvc;.;total": 2,
    "canary_tagger_sticky_id_issued_total": 1,
}


def test_counters_count_decisions_normalizations_spoofs_and_sticky_ids(envoy_with, http2):
    envoy = envoy_with(COUNTED)
    before = wasm_counters(envoy)
    android_versions = set()
    for headers, version in TRAFFIC:
        reply = envoy.request("/", headers=headers, http2=http2)
        if version is None:
            android_versions.add(reply.body["version"])
        else:
            assert_answered(reply, version)
    after = wasm_counters(envoy)
    deltas = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    expected = dict(EXPECTED_DELTAS)
    (android,) = android_versions
    expected[f"{REQUESTS}.decided_by=.=rule;.;rule=.=android;.;version=.={android};.;total"] = 1
    changed = {name: delta for name, delta in deltas.items() if delta}
    assert changed == expected


def test_counters_are_exported_to_prometheus(envoy_with):
    envoy = envoy_with(COUNTED)
    envoy.request("/", headers={"cookie": "user=tester"})
    counters = wasm_counters(envoy)
    samples, types = parse_prometheus(envoy.admin_get("/stats/prometheus"))
    tester = f"{REQUESTS}.decided_by=.=rule;.;rule=.=testers;.;version=.=v2;.;total"
    assert counters[tester] >= 1
    assert samples['canary_tagger_requests_total{decided_by="rule",rule="testers",version="v2"}'] == counters[tester]
    assert samples['canary_tagger_normalized_total{header="grpcsvc"}'] == counters[
        "canary_tagger_normalized.header=.=grpcsvc;.;total"]
    assert samples["canary_tagger_sticky_id_issued_total"] == counters["canary_tagger_sticky_id_issued_total"]
    for metric in ("canary_tagger_requests_total", "canary_tagger_normalized_total",
                   "canary_tagger_client_tag_stripped_total"):
        assert types[metric] == "counter"
