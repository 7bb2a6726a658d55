"""SPEC §1.7 / issue 5: every counter of docs/metrics.md, exact values, documented names.

test_metrics.py checks the deltas of a small mix; this one pins the complete set of
counter names a configuration defines and their exact values, including the Prometheus
spelling of a rule name with a hyphen, and how counters behave across ECDS reloads.

One Envoy (configuration delivered by ECDS, as Istio does) with a configuration that uses
every kind of rule (fixed version, source_ip, regex, version_from, split with a sticky
cookie), a normalization, trusted tag sources and the XFF client address. A known mix of
requests goes in over HTTP/1.1 and HTTP/2; then the whole set of canary_tagger counters in
/stats must be exactly the expected one, and /stats/prometheus must show the same values
under the names docs/metrics.md documents. A valid reload keeps the counters (Prometheus
rates stay continuous) and an invalid one counts in config_rejected.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from canary_e2e.assertions import answered_by, upstream_saw
from canary_e2e.ecds import ECDS_STATS_PREFIX, EcdsEnvoy, parse_prometheus
from canary_e2e.envoy_process import require_wasm_module
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


# (case, how many, request headers, version that must answer, counters it adds).
# `None` as version: decided by a split on a random sticky id, checked against SPEC §3.
P = "wasmcustom.canary_tagger."
MIX = [
    ("chrome", 7, req(ua=CHROME), "v2", {"requests.rule.chrome.v2": 1}),
    ("tester cookie", 3, req(cookie="theme=dark; user=tester; lang=en"), "v2", {"requests.rule.testers.v2": 1}),
    ("tester cookie on chrome: first rule wins", 2, req(ua=CHROME, cookie="user=tester"), "v2",
     {"requests.rule.testers.v2": 1}),
    ("grpc without grpcsvc", 3, req(content_type="application/grpc"), "v1",
     {"normalized.grpcsvc": 1, "requests.rule.pick.v1": 1}),
    ("grpc with unknown grpcsvc", 1, req(content_type="application/grpc", grpcsvc="v9"), "v1",
     {"normalized.grpcsvc": 1, "requests.rule.pick.v1": 1}),
    ("grpc with grpcsvc v3", 2, req(content_type="application/grpc+proto", grpcsvc="v3"), "v3",
     {"requests.rule.pick.v3": 1}),
    ("plain http with grpcsvc v2: not normalized, picked", 1, req(grpcsvc="v2"), "v2",
     {"requests.rule.pick.v2": 1}),
    ("spoofed tag from an untrusted client", 4, req(xff=UNTRUSTED, x_canary_version="v3"), "v1",
     {"client_tag_stripped": 1, "requests.default.v1": 1}),
    ("tag from a trusted source", 2, req(xff=TRUSTED, x_canary_version="v3"), "v3",
     {"requests.trusted_tag.v3": 1}),
    ("unknown tag from a trusted source", 1, req(xff=TRUSTED, x_canary_version="v9"), "v1",
     {"client_tag_stripped": 1, "requests.default.v1": 1}),
    ("office address", 1, req(xff=OFFICE), "v3", {"requests.rule.office.v3": 1}),
    ("android alice (bucket 5246)", 1, req(ua=ANDROID, cookie="uid=alice"), "v1",
     {f"requests.rule.{SPLIT_RULE}.v1": 1}),
    ("android bob (bucket 3219)", 1, req(ua=ANDROID, cookie="uid=bob"), "v2",
     {f"requests.rule.{SPLIT_RULE}.v2": 1}),
    ("android carol (bucket 2091)", 1, req(ua=ANDROID, cookie="uid=carol"), "v2",
     {f"requests.rule.{SPLIT_RULE}.v2": 1}),
    ("no rule matches", 6, req(), "v1", {"requests.default.v1": 1}),
    ("malformed xff entry: peer address", 1, req(xff="not-an-ip"), "v1",
     {"client_ip_fallback": 1, "requests.default.v1": 1}),
    ("no xff at all: peer address", 1, req(xff=None), "v1",
     {"client_ip_fallback": 1, "requests.default.v1": 1}),
]
ANONYMOUS_ANDROIDS = 2   # no key at all: each gets a sticky id, then comes back with it once

# Every counter the configuration defines, at zero (config_rejected too, so that
# Prometheus' increase() sees the first rejection): pairs a rule can never produce are not
# defined (testers is always v2, ...); trusted_tag.* exist because trusted_tag_sources is set.
ALL_COUNTERS_AT_ZERO = {f"{P}{name}": 0 for name in [
    "requests.rule.testers.v2", "requests.rule.office.v3", "requests.rule.chrome.v2",
    "requests.rule.pick.v1", "requests.rule.pick.v2", "requests.rule.pick.v3",
    f"requests.rule.{SPLIT_RULE}.v1", f"requests.rule.{SPLIT_RULE}.v2",
    "requests.default.v1",
    "requests.trusted_tag.v1", "requests.trusted_tag.v2", "requests.trusted_tag.v3",
    "normalized.grpcsvc", "client_tag_stripped", "sticky_id_issued", "client_ip_fallback",
    "config_rejected",
]}


def prometheus_name(stat: str) -> str:
    """docs/metrics.md: /stats/prometheus drops the `wasmcustom.` namespace, adds no
    `envoy_` prefix, and writes every character outside [a-zA-Z0-9_] as `_`."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", stat.removeprefix("wasmcustom."))


@pytest.fixture(scope="module")
def envoy(tmp_path_factory):
    require_wasm_module()
    envoy = EcdsEnvoy(METRICS_CONFIG, concurrency=2, work_dir=tmp_path_factory.mktemp("metrics-envoy"))
    envoy.start()
    yield envoy
    envoy.stop()


def test_counters_count_a_known_mix_exactly(envoy):
    assert envoy.filter_counters() == ALL_COUNTERS_AT_ZERO, "counters before any request"

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
        for name, value in adds.items():
            expected[f"{P}{name}"] += value * times

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
        expected[f"{P}sticky_id_issued"] += 1
        expected[f"{P}requests.rule.{SPLIT_RULE}.{version}"] += 2
        sent += 2

    want = {**ALL_COUNTERS_AT_ZERO, **expected}
    got = envoy.filter_counters()
    assert got == want, _diff(got, want)
    # Every request counted exactly once by a (rule|default|trusted_tag, version) counter.
    assert sum(v for k, v in got.items() if k.startswith(f"{P}requests.")) == sent

    # The same values in Prometheus text, under the documented names, typed counter.
    samples, types = parse_prometheus(envoy.prometheus())
    for stat, value in want.items():
        name = prometheus_name(stat)
        assert samples.get(name) == value, f"{name} (for {stat}): {samples.get(name)} != {value}"
        assert types.get(name) == "counter", f"{name}: TYPE {types.get(name)}"
    assert samples["canary_tagger_requests_rule_android_half_v2"] == want[f"{P}requests.rule.android-half.v2"]
    assert not [n for n in samples if n.startswith("envoy_canary_tagger") or n.startswith("wasmcustom")]


def test_counters_survive_a_reload_and_count_rejections(envoy):
    before = envoy.filter_counters()
    ecds = envoy.ecds_stats()

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
    chrome_requests = envoy.filter_counters()[f"{P}requests.rule.chrome.v2"] - before[f"{P}requests.rule.chrome.v2"]
    assert chrome_requests >= 1

    # An invalid change: rejected by Envoy, counted once by the filter, old config decides.
    envoy.deliver({**reloaded, "rules": [{"name": "android", "split": {"weights": [
        {"version": "v2", "percent": 40}, {"version": "v1", "percent": 50}]}}]})
    assert envoy.wait_for_stat(f"{ECDS_STATS_PREFIX}config_fail", ecds["config_fail"] + 1, 5.0) is not None
    reply = envoy.request("/", headers=req(ua=CHROME), http2=True)
    assert answered_by(reply) == "v2" and upstream_saw(reply, "baggage") == ["canary-version=v2"]

    after = envoy.filter_counters()
    want = dict(before)
    want[f"{P}requests.rule.chrome.v2"] += chrome_requests + 1
    want[f"{P}config_rejected"] = 1
    assert after == want, _diff(after, want)
    samples, types = parse_prometheus(envoy.prometheus())
    assert samples["canary_tagger_config_rejected"] == 1 and types["canary_tagger_config_rejected"] == "counter"
    assert samples["canary_tagger_requests_rule_chrome_v2"] == want[f"{P}requests.rule.chrome.v2"]
    assert samples["envoy_extension_config_discovery_http_filter_canary_tagger_config_fail"] == ecds["config_fail"] + 1


def _diff(got: dict, want: dict) -> str:
    lines = [f"  {k}: got {got.get(k)}, want {want.get(k)}"
             for k in sorted(set(got) | set(want)) if got.get(k) != want.get(k)]
    return "counters differ:\n" + "\n".join(lines)
