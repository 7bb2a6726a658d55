"""SPEC §1.7 / issues 5 and 14: every counter of docs/metrics.md, exact values, documented
names and labels.

test_metrics.py checks the deltas of a small mix; this one pins the complete set of
series a configuration defines and their exact values, and how counters behave across
ECDS reloads.

One Envoy (configuration delivered by ECDS, as Istio does, with the labels of
envoyfilter/metrics/stats-tags.yaml) with a configuration that uses every kind of rule
(fixed version, source_ip, regex, version_from, split with a sticky cookie), a
normalization, trusted tag sources and the XFF client address. A known mix of requests
goes in over HTTP/1.1 and HTTP/2; then the whole set of canary_tagger counters in /stats
must be exactly the expected one under the documented names, and /stats/prometheus must
show the same values as labelled series. A valid reload keeps the counters (Prometheus
rates stay continuous) and an invalid one counts in config_rejected.

Then: the Flagger recipe's set exactly as the page lists it, with and without the labels,
and names holding every character the encoding reserves, each on a series of its own.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import pytest

from canary_e2e.assertions import answered_by, upstream_saw
from canary_e2e.ecds import ECDS_STATS_PREFIX, EcdsEnvoy, parse_prometheus, parse_stats, series
from canary_e2e.envoy_process import REPO_ROOT, require_wasm_module
from canary_e2e.fixtures import spec_example
from canary_e2e.spec_hash import split_version

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36"
SPLIT_RULE = "android-half"
SPLIT_WEIGHTS = [{"version": "v2", "percent": 50}, {"version": "v1", "percent": 50}]
STICKY_COOKIE = "canary-uid"

# The SPEC §2 example (the client address is the XFF entry left of the one Envoy appended,
# SPEC §1.1), without baggage, and with the split renamed (a hyphen, to show its Prometheus
# spelling) and keyed on a cookie only, so that requests without one get a sticky id.
METRICS_CONFIG = spec_example()
del METRICS_CONFIG["baggage"]
assert METRICS_CONFIG["sticky_cookie"]["name"] == STICKY_COOKIE
METRICS_CONFIG["rules"][-1] = {
    "name": SPLIT_RULE, "match": {"header": "user-agent", "contains": "Android"},
    "split": {"weights": SPLIT_WEIGHTS, "key": ["cookie:uid"]},
}

CLIENT = "203.0.113.7"        # an ordinary client, as the load balancer in front appended it
UNTRUSTED = "203.0.113.9"
TRUSTED = "10.20.1.5"
OFFICE = "192.168.0.58"


def req(xff: str | None = CLIENT, ua: str = FIREFOX, **headers) -> list[tuple[str, str]]:
    pairs = [("user-agent", ua)]
    if xff is not None:
        pairs.append(("x-forwarded-for", xff))
    pairs += [(name.replace("_", "-"), value) for name, value in headers.items()]
    return pairs


# A counter: its Prometheus metric and labels, in the order the filter writes them.
REQUESTS = "canary_tagger_requests_total"


def counter(metric: str, **labels: str) -> tuple[str, tuple]:
    return metric, tuple(labels.items())


def rule(name: str, version: str):
    return counter(REQUESTS, decided_by="rule", rule=name, version=version)


def default(version: str):
    return counter(REQUESTS, decided_by="default", version=version)


def trusted_tag(version: str):
    return counter(REQUESTS, decided_by="trusted_tag", version=version)


def normalized(header: str):
    return counter("canary_tagger_normalized_total", header=header)


def event(name: str):
    return counter(f"canary_tagger_{name}_total")


def encoded(value: str) -> str:
    """docs/metrics.md: a label value as written, but `%`, `;`, `=` and a trailing `.`."""
    value = value.replace("%", "%25").replace(";", "%3B").replace("=", "%3D")
    return value[:-1] + "%2E" if value.endswith(".") else value


def stat_name(key) -> str:
    """docs/metrics.md: the /stats name — the Prometheus name with `label=.=value;.;` per
    label written in before its last word, under `wasmcustom.`."""
    metric, labels = key
    if not labels:
        return f"wasmcustom.{metric}"
    stem, last_word = metric.rsplit("_", 1)
    return f"wasmcustom.{stem}." + "".join(f"{k}=.={encoded(v)};.;" for k, v in labels) + last_word


def prometheus_series(key) -> str:
    """With envoyfilter/metrics/stats-tags.yaml: the metric with the labels."""
    metric, labels = key
    return series(metric, {k: encoded(v) for k, v in labels})


def unlabelled_prometheus_name(key) -> str:
    """docs/metrics.md, without the stats tags: /stats/prometheus drops `wasmcustom.`, adds
    no `envoy_` prefix, and writes every character outside [a-zA-Z0-9_] as `_`."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", stat_name(key).removeprefix("wasmcustom."))


# (case, how many, request headers, version that must answer, counters it adds).
# `None` as version: decided by a split on a random sticky id, checked against SPEC §3.
MIX = [
    ("chrome", 7, req(ua=CHROME), "v2", [rule("chrome", "v2")]),
    ("tester cookie", 3, req(cookie="theme=dark; user=tester; lang=en"), "v2", [rule("testers", "v2")]),
    ("tester cookie on chrome: first rule wins", 2, req(ua=CHROME, cookie="user=tester"), "v2",
     [rule("testers", "v2")]),
    ("grpc without grpcsvc", 3, req(content_type="application/grpc"), "v1",
     [normalized("grpcsvc"), rule("pick", "v1")]),
    ("grpc with unknown grpcsvc", 1, req(content_type="application/grpc", grpcsvc="v9"), "v1",
     [normalized("grpcsvc"), rule("pick", "v1")]),
    ("grpc with grpcsvc v3", 2, req(content_type="application/grpc+proto", grpcsvc="v3"), "v3",
     [rule("pick", "v3")]),
    ("plain http with grpcsvc v2: not normalized, picked", 1, req(grpcsvc="v2"), "v2",
     [rule("pick", "v2")]),
    ("spoofed tag from an untrusted client", 4, req(xff=UNTRUSTED, x_canary_version="v3"), "v1",
     [event("client_tag_stripped"), default("v1")]),
    ("tag from a trusted source", 2, req(xff=TRUSTED, x_canary_version="v3"), "v3",
     [trusted_tag("v3")]),
    ("unknown tag from a trusted source", 1, req(xff=TRUSTED, x_canary_version="v9"), "v1",
     [event("client_tag_stripped"), default("v1")]),
    ("office address", 1, req(xff=OFFICE), "v3", [rule("office", "v3")]),
    ("android alice (bucket 5246)", 1, req(ua=ANDROID, cookie="uid=alice"), "v1", [rule(SPLIT_RULE, "v1")]),
    ("android bob (bucket 3219)", 1, req(ua=ANDROID, cookie="uid=bob"), "v2", [rule(SPLIT_RULE, "v2")]),
    ("android carol (bucket 2091)", 1, req(ua=ANDROID, cookie="uid=carol"), "v2", [rule(SPLIT_RULE, "v2")]),
    ("no rule matches", 6, req(), "v1", [default("v1")]),
    ("malformed xff entry: peer address", 1, req(xff="not-an-ip"), "v1",
     [event("client_ip_fallback"), default("v1")]),
    ("no xff at all: peer address", 1, req(xff=None), "v1",
     [event("client_ip_fallback"), default("v1")]),
]
ANONYMOUS_ANDROIDS = 2   # no key at all: each gets a sticky id, then comes back with it once

# Every counter the configuration defines, at zero (config_rejected too, so that
# Prometheus' increase() sees the first rejection): pairs a rule can never produce are not
# defined (testers is always v2, ...); trusted_tag series exist because trusted_tag_sources is set.
ALL_COUNTERS = [
    rule("testers", "v2"), rule("office", "v3"), rule("chrome", "v2"),
    rule("pick", "v1"), rule("pick", "v2"), rule("pick", "v3"),
    rule(SPLIT_RULE, "v1"), rule(SPLIT_RULE, "v2"),
    default("v1"), trusted_tag("v1"), trusted_tag("v2"), trusted_tag("v3"),
    normalized("grpcsvc"), event("client_tag_stripped"), event("sticky_id_issued"),
    event("client_ip_fallback"), event("config_rejected"),
]


def in_stats(counts: dict) -> dict[str, int]:
    return {stat_name(key): value for key, value in counts.items()}


@pytest.fixture(scope="module")
def envoy(tmp_path_factory):
    require_wasm_module()
    envoy = EcdsEnvoy(METRICS_CONFIG, concurrency=2, work_dir=tmp_path_factory.mktemp("metrics-envoy"))
    envoy.start()
    yield envoy
    envoy.stop()


def test_counters_count_a_known_mix_exactly(envoy):
    zero = {key: 0 for key in ALL_COUNTERS}
    assert envoy.filter_counters() == in_stats(zero), "counters before any request"

    expected = Counter()
    sent = 0
    for case, times, headers, version, adds in MIX:
        for n in range(times):
            reply = envoy.request("/", headers=headers, http2=bool((sent + n) % 2))
            assert answered_by(reply) == version, f"{case}: answered by {reply.body.get('version')}"
            assert reply.headers.get("x-canary-version") == version, case
            assert upstream_saw(reply, "x-canary-version") == [version], case
            assert not reply.headers.get_list("set-cookie"), f"{case}: unexpected sticky cookie"
        sent += times
        for key in adds:
            expected[key] += times

    # Anonymous Android users: a sticky id each, then the same version with it.
    for n in range(ANONYMOUS_ANDROIDS):
        reply = envoy.request("/", headers=req(ua=ANDROID), http2=bool(n % 2))
        cookies = reply.headers.get_list("set-cookie")
        assert len(cookies) == 1 and cookies[0].startswith(f"{STICKY_COOKIE}="), cookies
        sticky_id = cookies[0].split(";", 1)[0].split("=", 1)[1]
        version = split_version(SPLIT_WEIGHTS, SPLIT_RULE, sticky_id)
        assert answered_by(reply) == version
        again = envoy.request("/", headers=req(ua=ANDROID, cookie=f"{STICKY_COOKIE}={sticky_id}"),
                              http2=bool(n % 2))
        assert answered_by(again) == version
        assert not again.headers.get_list("set-cookie"), "a returning user got a new sticky id"
        expected[event("sticky_id_issued")] += 1
        expected[rule(SPLIT_RULE, version)] += 2
        sent += 2

    want = {**zero, **expected}
    got = envoy.filter_counters()
    assert got == in_stats(want), _diff(got, in_stats(want))
    # Every request counted exactly once by a canary_tagger_requests_total series.
    assert sum(value for (metric, _), value in want.items() if metric == REQUESTS) == sent

    # The same values in Prometheus text: one metric per kind, the labels, typed counter,
    # and nothing else of ours (no leftover per-name metrics, no envoy_ prefix).
    samples, types = parse_prometheus(envoy.prometheus())
    ours = {name: value for name, value in samples.items() if name.startswith("canary_tagger_")}
    assert ours == {prometheus_series(key): value for key, value in want.items()}, _diff(
        ours, {prometheus_series(key): value for key, value in want.items()})
    assert {metric for metric, _ in want} == {n for n in types if n.startswith("canary_tagger_")}
    assert all(types[metric] == "counter" for metric, _ in want)
    assert samples['canary_tagger_requests_total{decided_by="rule",rule="android-half",version="v2"}'] \
        == want[rule("android-half", "v2")]
    assert not [n for n in samples if n.startswith("envoy_canary_tagger") or n.startswith("wasmcustom")]


def test_counters_survive_a_reload_and_count_rejections(envoy):
    before = envoy.filter_counters()
    ecds = envoy.ecds_stats()
    chrome = stat_name(rule("chrome", "v2"))

    # A valid change: Envoy builds a new plugin root context; counters keep their values.
    reloaded = {**METRICS_CONFIG, "baggage": True}
    envoy.deliver(reloaded)
    assert envoy.wait_for_stat(f"{ECDS_STATS_PREFIX}update_success", ecds["update_success"] + 1, 5.0) is not None
    deadline = time.monotonic() + 5.0
    while True:  # the first answer with baggage is the new configuration deciding
        reply = envoy.request("/", headers=req(ua=CHROME))
        if upstream_saw(reply, "baggage"):
            break
        assert time.monotonic() < deadline, "the reload never took effect"
    chrome_requests = envoy.filter_counters()[chrome] - before[chrome]
    assert chrome_requests >= 1

    # An invalid change: rejected by Envoy, counted once by the filter, old config decides.
    envoy.deliver({**reloaded, "rules": [{"name": "android", "split": {"weights": [
        {"version": "v2", "percent": 40}, {"version": "v1", "percent": 50}]}}]})
    assert envoy.wait_for_stat(f"{ECDS_STATS_PREFIX}config_fail", ecds["config_fail"] + 1, 5.0) is not None
    reply = envoy.request("/", headers=req(ua=CHROME), http2=True)
    assert answered_by(reply) == "v2" and upstream_saw(reply, "baggage") == ["canary-version=v2"]

    after = envoy.filter_counters()
    want = dict(before)
    want[chrome] += chrome_requests + 1
    want[stat_name(event("config_rejected"))] = 1
    assert after == want, _diff(after, want)
    samples, types = parse_prometheus(envoy.prometheus())
    assert samples["canary_tagger_config_rejected_total"] == 1
    assert types["canary_tagger_config_rejected_total"] == "counter"
    assert samples[prometheus_series(rule("chrome", "v2"))] == want[chrome]
    assert samples["envoy_extension_config_discovery_http_filter_canary_tagger_config_fail"] == ecds["config_fail"] + 1


# ---------------------------------------------------------------- what docs/metrics.md shows

def doc_blocks(after_heading: str) -> list[list[str]]:
    """The plain ``` blocks of the docs/metrics.md section under `after_heading`."""
    text = (REPO_ROOT / "docs" / "metrics.md").read_text()
    section = text.split(after_heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return [block.split() for block in re.findall(r"\n```\n(.*?)```", section, re.S)]


FLAGGER_CONFIG = json.loads((REPO_ROOT / "envoyfilter" / "flagger" / "plugin-config.json").read_text())


def test_the_documented_flagger_set_with_labels(envoy_with):
    envoy = envoy_with(FLAGGER_CONFIG)
    (prometheus,) = doc_blocks("## The counters")
    (stats, *_) = doc_blocks("## The names in Envoy's `/stats`")
    samples, _ = parse_prometheus(envoy.admin_get("/stats/prometheus"))
    assert sorted(n for n in samples if n.startswith("canary_tagger_")) == sorted(
        p.removesuffix("{}") for p in prometheus)
    assert all(samples[p.removesuffix("{}")] == 0 for p in prometheus)
    listed = parse_stats(envoy.admin_get("/stats"))
    assert sorted(n for n in listed if n.startswith("wasmcustom.")) == sorted(stats)


def test_the_documented_names_without_labels(envoy_with):
    envoy = envoy_with(FLAGGER_CONFIG, stats_tags=False)
    (without,) = doc_blocks("### Without the labels")
    samples, types = parse_prometheus(envoy.admin_get("/stats/prometheus"))
    ours = {name for name in samples if name.startswith("canary_tagger_")}
    # Every series a metric name of its own, no labels; its name is the /stats name
    # sanitized. The page shows a part of the set.
    stats = [n for n in parse_stats(envoy.admin_get("/stats")) if n.startswith("wasmcustom.")]
    assert ours == {re.sub(r"[^a-zA-Z0-9_]", "_", n.removeprefix("wasmcustom.")) for n in stats}
    assert all(types[name] == "counter" for name in ours)
    shown = [line.removesuffix("{}") for line in without[0::2]]
    assert set(shown) <= ours and len(shown) >= 3, shown


# Names that hold every character the encoding reserves, and Istio's and Envoy's own
# separators: rule names are any visible ASCII, versions A-Z a-z 0-9 . _ -, header names
# HTTP tokens.
AWKWARD_RULES = ["a;.;version=.=v9;.;", "x=.=y", "100%", "%3B", "tag.beta", "ends.", ".", "a..b",
                 'q"\\z', "k:v/w#1"]
AWKWARD_VERSIONS = ["v1", "v1.", "1.4.0", "_-"]
AWKWARD_HEADER = "x-%.~svc"


def test_awkward_names_keep_their_own_labels(envoy_with):
    config = {
        "versions": AWKWARD_VERSIONS, "default_version": "v1",
        "normalize": [{"header": AWKWARD_HEADER, "allowed": ["a"], "default": "a"}],
        "rules": [{"name": name, "match": {"header": f"x-rule-{n}", "present": True},
                   "version": AWKWARD_VERSIONS[n % len(AWKWARD_VERSIONS)]}
                  for n, name in enumerate(AWKWARD_RULES)],
    }
    envoy = envoy_with(config, versions=AWKWARD_VERSIONS)
    expected = Counter()
    for n, name in enumerate(AWKWARD_RULES):
        version = AWKWARD_VERSIONS[n % len(AWKWARD_VERSIONS)]
        for _ in range(n + 1):  # a different count per rule: no two series can be confused
            reply = envoy.request("/", headers={f"x-rule-{n}": "1"})
            assert upstream_saw(reply, "x-canary-version") == [version], name
            expected[rule(name, version)] += 1
            expected[normalized(AWKWARD_HEADER.lower())] += 1
    want = {default("v1"): 0, event("client_tag_stripped"): 0, event("sticky_id_issued"): 0,
            event("client_ip_fallback"): 0, event("config_rejected"): 0, **expected}
    samples, types = parse_prometheus(envoy.admin_get("/stats/prometheus"))
    ours = {name: value for name, value in samples.items() if name.startswith("canary_tagger_")}
    assert ours == {prometheus_series(key): value for key, value in want.items()}, _diff(
        ours, {prometheus_series(key): value for key, value in want.items()})
    # Two metrics with labels, nothing cut into the metric names.
    assert {n for n in types if n.startswith("canary_tagger_")} == {metric for metric, _ in want}
    # The encoding is reversible: each label value gives back the configured name.
    for name in AWKWARD_RULES + AWKWARD_VERSIONS:
        value = encoded(name)
        decoded = re.sub(r"%2E$", ".", value).replace("%3B", ";").replace("%3D", "=").replace("%25", "%")
        assert decoded == name


def _diff(got: dict, want: dict) -> str:
    lines = [f"  {k}: got {got.get(k)}, want {want.get(k)}"
             for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)]
    return "counters differ:\n" + "\n".join(lines)
