"""Waypoint mode (SPEC §12) through a real Envoy whose listeners carry no traffic_direction,
as on an Istio ambient waypoint that serves both hops of a request:

    client (as the gateway) ──► listener A [canary-tagger waypoint] ──► frontend vN
    frontend ──► listener B [canary-tagger waypoint] ──► backend vN (routed on the tag only)

Same module, same configuration, one trace table (one replica). The first hop arrives
tagged (kept and remembered), the frontend's call arrives with what the app forwarded
(restored). Each case tells the frontend what to forward (`x-test-forward`).
Also here: `tracestate` written at the gateway, and hostile `tracestate` values.
"""

from __future__ import annotations

import uuid

import pytest

from canary_e2e.assertions import assert_answered, describe, upstream_saw
from canary_e2e.ecds import parse_prometheus
from test_sidecar import SIDECAR, as_the_app, through_the_sidecar

# test_sidecar.py's configuration as a waypoint: the same fields, `restore` left to the
# waypoint's default (header, baggage, tracestate, trace).
WAYPOINT = {**{k: v for k, v in SIDECAR.items() if k != "restore"}, "mode": "waypoint"}
GATEWAY = {
    "schema": 1,
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    "tracestate": True,
    "rules": [{"name": "testers", "match": {"header": "x-user-group", "exact": "testers"},
               "version": "v2"}],
}


def traceparent() -> str:
    return f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"


def cases():
    # (case, what the gateway sent, what the frontend forwards, backend version, source)
    return [
        ("forwards the tag", {"x-canary-version": "v2"}, ["x-canary-version"], "v2", "header"),
        ("forwards baggage", {"x-canary-version": "v3", "baggage": "canary-version=v3"}, ["baggage"],
         "v3", "baggage"),
        ("forwards traceparent and tracestate",
         {"x-canary-version": "v3", "traceparent": traceparent(), "tracestate": "canary=v3,rojo=1"},
         ["traceparent", "tracestate"], "v3", "tracestate"),
        ("forwards tracestate only", {"x-canary-version": "v2", "tracestate": "canary=v2"},
         ["tracestate"], "v2", "tracestate"),
        ("forwards traceparent only", {"x-canary-version": "v2", "traceparent": traceparent()},
         ["traceparent"], "v2", "trace"),
        ("forwards nothing", {"x-canary-version": "v3", "traceparent": traceparent()}, [], "v1", "default"),
    ]


CASE_IDS = [c[0] for c in cases()]


def restored_counters(envoy) -> dict[str, int]:
    samples = parse_prometheus(envoy.admin_get("/stats/prometheus"))[0]
    return {k: v for k, v in samples.items() if k.startswith("canary_tagger_")}


@pytest.mark.parametrize("index", range(len(CASE_IDS)), ids=CASE_IDS)
def test_every_hop_keeps_or_restores_the_version(envoy_with, http2, index):
    case, headers, forward, version, source = cases()[index]
    envoy = envoy_with(WAYPOINT, topology="waypoint", stats_tags=True)
    before = restored_counters(envoy)
    reply, backend = through_the_sidecar(envoy, headers, forward, http2)
    # The first hop's known tag is kept as it is.
    assert_answered(reply, headers["x-canary-version"])
    assert reply.body["headers"]["x-canary-version"] == headers["x-canary-version"]
    assert backend["version"] == version, f"{case}: backend {backend['version']}; {describe(reply)}"
    assert backend["headers"]["x-canary-version"] == version
    after = restored_counters(envoy)
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    restored = {k: v for k, v in delta.items() if k.startswith("canary_tagger_restored_total")}
    # Exactly one count per request through the waypoint: the kept first hop as `header`,
    # the second hop by the source that restored it.
    expected = {f'canary_tagger_restored_total{{source="header",version="{headers["x-canary-version"]}"}}': 1}
    key = f'canary_tagger_restored_total{{source="{source}",version="{version}"}}'
    expected[key] = expected.get(key, 0) + 1
    assert restored == expected, delta
    assert not any(k.startswith("canary_tagger_direction_unspecified") and v for k, v in delta.items())


def test_unknown_values_are_never_forwarded(envoy_with, http2):
    envoy = envoy_with(WAYPOINT, topology="waypoint")
    backend = as_the_app(envoy, {"x-canary-version": "v9", "baggage": "canary-version=v7",
                                 "tracestate": "canary=v8,canary=v2"}, http2)
    # Only the first canary member counts; it names no version, so the default serves.
    assert backend["version"] == "v1"
    assert backend["headers"]["x-canary-version"] == "v1"


def test_the_gateway_puts_its_member_first_in_tracestate(envoy_with, http2):
    envoy = envoy_with(GATEWAY)
    tp = traceparent()
    reply = envoy.request("/", headers={"x-user-group": "testers", "traceparent": tp,
                                        "tracestate": "rojo=00f067aa0ba902b7,canary=v3,congo=t61rcWkgMzE"},
                          http2=http2)
    assert_answered(reply, "v2")
    assert upstream_saw(reply, "tracestate") == ["canary=v2,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]


def test_without_a_valid_traceparent_only_the_clients_member_goes(envoy_with, http2):
    envoy = envoy_with(GATEWAY)
    before = parse_prometheus(envoy.admin_get("/stats/prometheus"))[0]
    for traceparent_value in [None, "00-abc-def-01", "ff-" + traceparent()[3:]]:
        headers = {"tracestate": "canary=v3,rojo=1"}
        if traceparent_value:
            headers["traceparent"] = traceparent_value
        reply = envoy.request("/", headers=headers, http2=http2)
        assert_answered(reply, "v1")
        assert upstream_saw(reply, "tracestate") == ["rojo=1"], describe(reply)
    reply = envoy.request("/", headers={"tracestate": "canary=v3"}, http2=http2)
    assert upstream_saw(reply, "tracestate") == [], describe(reply)
    after = parse_prometheus(envoy.admin_get("/stats/prometheus"))[0]
    name = "canary_tagger_client_tag_stripped_total"
    assert after[name] - before.get(name, 0) == 4


@pytest.mark.parametrize("tracestate", [
    ",".join(f"k{i}=v" for i in range(33)),
    ",".join(f"k{i}=v" for i in range(1000)),
    "A=1,1a=2,=x,canary=v3,canary=v2",
    "big=" + "x" * 8192,
    "k=\udcff",
], ids=["33 members", "1000 members", "invalid keys and duplicate canary", "8 KB value", "non-UTF-8"])
def test_hostile_tracestate_gets_a_deterministic_decision(envoy_with, http2, tracestate):
    envoy = envoy_with(GATEWAY)
    raw = tracestate.encode("utf-8", "surrogateescape")
    replies = [envoy.request("/", headers={"traceparent": traceparent(), "tracestate": raw}, http2=http2)
               for _ in range(2)]
    for reply in replies:
        assert reply.status == 200, describe(reply)
        assert_answered(reply, "v1")
        [written] = upstream_saw(reply, "tracestate")
        members = written.split(",")
        assert members[0] == "canary=v1" and len(members) <= 32, written[:200]
        assert sum(m.split("=")[0] == "canary" for m in members) == 1
    assert upstream_saw(replies[0], "tracestate") == upstream_saw(replies[1], "tracestate")
