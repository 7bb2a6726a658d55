"""Sidecar mode (SPEC §8): the tag follows a request through a workload that forwards only
what it already forwards — the tag, `baggage`, or trace context — through a real Envoy.

One Envoy plays the frontend's sidecar (topology "sidecar" of envoy_process.py):

    client ──► INBOUND listener [canary-tagger sidecar] ──► frontend vN (routed on the tag)
    frontend ──► OUTBOUND listener [canary-tagger sidecar] ──► backend vN (routed on the tag)

Both listeners run the module with the same vm_id and configuration, so they share one
trace table. The client stands for the gateway: it sends the tag (and baggage / trace
headers). Each case tells the frontend which headers to forward on its backend call
(`x-test-forward`), so one Envoy serves every case; the backend answer shows the version
the call reached and the headers it carried. Cases that need an app forwarding values it
did not receive (forged or unknown ones) call the OUTBOUND listener directly, as the app.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from canary_e2e.assertions import assert_answered, describe
from canary_e2e.ecds import parse_prometheus
from canary_e2e.envoy_process import FORWARD_LIST_HEADER, _blocking_client

SIDECAR = {
    "schema": 1,
    "mode": "sidecar",
    "tag_header": "x-canary-version",
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    "restore": ["header", "baggage", "trace"],
    "trace_memory": {"entries": 65536, "ttl_s": 300},
}
SIDECAR_BAGGAGE = {**SIDECAR, "baggage": True}
SHORT_TTL = {**SIDECAR, "trace_memory": {"entries": 1024, "ttl_s": 1}}


def traceparent() -> tuple[str, str]:
    """A fresh W3C traceparent and its trace id."""
    trace_id = uuid.uuid4().hex
    return f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01", trace_id


def through_the_sidecar(envoy, headers: dict, forward: list[str], http2: bool):
    """A request as the gateway sends it to the frontend; the frontend forwards `forward`."""
    reply = envoy.request("/page", headers={**headers, FORWARD_LIST_HEADER: ",".join(forward) or "none"},
                          http2=http2)
    assert reply.body.get("role") == "frontend", describe(reply)
    backend = reply.body["backend"]
    assert backend.get("service") == "backend", describe(reply)
    return reply, backend


def as_the_app(envoy, headers: dict, http2: bool = False) -> dict:
    """A call the app makes through the OUTBOUND listener, with exactly these headers."""
    with _blocking_client(http2) as client:
        response = client.get(f"{envoy.internal_url}/call", headers={"host": "backend", **headers})
    body = response.json()
    assert body.get("service") == "backend", body
    return body


def forwarded_cases():
    # (case, what the gateway sent the frontend, what the frontend forwards, backend version)
    tp, _ = traceparent()
    return [
        ("forwards the tag", {"x-canary-version": "v2"}, ["x-canary-version"], "v2"),
        ("forwards only baggage", {"x-canary-version": "v3", "baggage": "tenant=acme,canary-version=v3"},
         ["baggage"], "v3"),
        ("forwards only traceparent", {"x-canary-version": "v2", "traceparent": tp}, ["traceparent"], "v2"),
        ("forwards only x-b3-traceid", {"x-canary-version": "v3", "x-b3-traceid": uuid.uuid4().hex[:16]},
         ["x-b3-traceid"], "v3"),
        ("forwards only x-request-id", {"x-canary-version": "v3", "x-request-id": str(uuid.uuid4())},
         ["x-request-id"], "v3"),
        ("forwards nothing: default", {"x-canary-version": "v2", "traceparent": tp}, [], "v1"),
    ]


CASE_IDS = [c[0] for c in forwarded_cases()]


@pytest.mark.parametrize("index", range(len(CASE_IDS)), ids=CASE_IDS)
def test_the_backend_call_reaches_the_frontends_version(envoy_with, http2, index):
    case, headers, forward, version = forwarded_cases()[index]
    envoy = envoy_with(SIDECAR, topology="sidecar")
    reply, backend = through_the_sidecar(envoy, headers, forward, http2)
    # The inbound tag is left as it is: the frontend of the gateway's version answered.
    assert_answered(reply, headers["x-canary-version"])
    assert reply.body["headers"]["x-canary-version"] == headers["x-canary-version"]
    assert backend["version"] == version, f"{case}: backend {backend['version']}; {describe(reply)}"
    assert backend["headers"]["x-canary-version"] == version


def test_baggage_is_written_as_at_the_gateway(envoy_with, http2):
    envoy = envoy_with(SIDECAR_BAGGAGE, topology="sidecar")
    tp, _ = traceparent()
    reply, backend = through_the_sidecar(
        envoy, {"x-canary-version": "v3", "traceparent": tp, "baggage": "tenant=acme"},
        ["traceparent", "baggage"], http2)
    assert backend["version"] == "v3", describe(reply)
    assert backend["headers"]["baggage"] == "tenant=acme,canary-version=v3"


def test_unknown_and_forged_values_are_ignored_never_forwarded(envoy_with, http2):
    envoy = envoy_with(SIDECAR, topology="sidecar")
    tp, _ = traceparent()
    # The gateway sent v2 with this trace: the inbound request is remembered.
    reply, _ = through_the_sidecar(envoy, {"x-canary-version": "v2", "traceparent": tp}, [], http2)
    assert_answered(reply, "v2")
    # The app then calls out with an unknown tag and an unknown baggage member: both are
    # ignored, the trace decides, and the unknown tag is replaced.
    backend = as_the_app(envoy, {"x-canary-version": "v9", "baggage": "canary-version=v7",
                                 "traceparent": tp}, http2)
    assert backend["version"] == "v2"
    assert backend["headers"]["x-canary-version"] == "v2"
    # Nothing known at all: the default, and the forged value is gone.
    backend = as_the_app(envoy, {"x-canary-version": "V3", "baggage": "canary-version=nope"}, http2)
    assert backend["version"] == "v1"
    assert backend["headers"]["x-canary-version"] == "v1"
    # An inbound request with an unknown tag is not remembered.
    tp2, _ = traceparent()
    through_the_sidecar(envoy, {"x-canary-version": "v9", "traceparent": tp2}, [], http2)
    assert as_the_app(envoy, {"traceparent": tp2}, http2)["version"] == "v1"


def test_a_trace_never_seen_gets_the_default(envoy_with, http2):
    envoy = envoy_with(SIDECAR, topology="sidecar")
    tp, _ = traceparent()
    backend = as_the_app(envoy, {"traceparent": tp, "x-b3-traceid": uuid.uuid4().hex,
                                 "x-request-id": str(uuid.uuid4())}, http2)
    assert backend["version"] == "v1"
    assert backend["headers"]["x-canary-version"] == "v1"


def test_a_malformed_traceparent_is_not_a_trace_id(envoy_with):
    envoy = envoy_with(SIDECAR, topology="sidecar")
    _, trace_id = traceparent()
    bad = f"00-{trace_id.upper()}-00f067aa0ba902b7-01"  # W3C: lower-case hex only
    through_the_sidecar(envoy, {"x-canary-version": "v3", "traceparent": bad}, [], False)
    assert as_the_app(envoy, {"traceparent": bad})["version"] == "v1"


def test_entries_past_ttl_are_ignored(envoy_with):
    envoy = envoy_with(SHORT_TTL, topology="sidecar")
    tp, _ = traceparent()
    through_the_sidecar(envoy, {"x-canary-version": "v3", "traceparent": tp}, [], False)
    assert as_the_app(envoy, {"traceparent": tp})["version"] == "v3"
    # ttl_s is 1 and ages are whole seconds: 3 s is past it whatever the rounding.
    time.sleep(3.0)
    assert as_the_app(envoy, {"traceparent": tp})["version"] == "v1"
    # Remembered again by the next inbound request of the trace.
    through_the_sidecar(envoy, {"x-canary-version": "v2", "traceparent": tp}, [], False)
    assert as_the_app(envoy, {"traceparent": tp})["version"] == "v2"


def test_concurrent_traces_of_different_versions_never_mix(envoy_with):
    envoy = envoy_with(SIDECAR, topology="sidecar")
    versions = ["v1", "v2", "v3"]

    def one(i: int) -> tuple[str, str]:
        version = versions[i % 3]
        tp, _ = traceparent()
        with httpx.Client(timeout=10.0, trust_env=False) as client:
            response = client.get(f"{envoy.url}/page", headers={
                "x-canary-version": version, "traceparent": tp, FORWARD_LIST_HEADER: "traceparent"})
        return version, response.json()["backend"]["version"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(150)))
    crossed = [(sent, reached) for sent, reached in results if sent != reached]
    assert not crossed, f"{len(crossed)} of {len(results)} crossed: {crossed[:5]}"


def test_counters_per_source_and_version(envoy_with):
    envoy = envoy_with(SIDECAR, topology="sidecar", stats_tags=True)

    def samples():
        return parse_prometheus(envoy.admin_get("/stats/prometheus"))[0]

    before = samples()
    tp, _ = traceparent()
    through_the_sidecar(envoy, {"x-canary-version": "v2", "traceparent": tp}, ["traceparent"], False)
    through_the_sidecar(envoy, {"x-canary-version": "v3"}, ["x-canary-version"], False)
    through_the_sidecar(envoy, {"x-canary-version": "v3", "baggage": "canary-version=v3"}, ["baggage"], False)
    as_the_app(envoy, {"traceparent": traceparent()[0]})
    after = samples()
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    sidecar_delta = {k: v for k, v in delta.items() if k.startswith("canary_tagger_")}
    assert sidecar_delta == {
        'canary_tagger_restored_total{source="trace",version="v2"}': 1,
        'canary_tagger_restored_total{source="header",version="v3"}': 1,
        'canary_tagger_restored_total{source="baggage",version="v3"}': 1,
        'canary_tagger_restored_total{source="default",version="v1"}': 1,
        # Every inbound request with a known tag and a trace id (Envoy's x-request-id at
        # least) is remembered.
        'canary_tagger_trace_remembered_total{version="v2"}': 1,
        'canary_tagger_trace_remembered_total{version="v3"}': 2,
        "canary_tagger_trace_misses_total": 1,
    }


def test_a_listener_without_direction_is_left_alone(envoy_with, http2):
    # The plain edge listener of the echo topology has no traffic_direction.
    envoy = envoy_with(SIDECAR)
    before = parse_prometheus(envoy.admin_get("/stats/prometheus"))[0]
    reply = envoy.request("/", headers={"x-canary-version": "v9", "baggage": "canary-version=v2"}, http2=http2)
    assert_answered(reply, "v1")  # the default route: nothing was restored
    assert reply.body["headers"]["x-canary-version"] == "v9", "the request must pass untouched"
    after = parse_prometheus(envoy.admin_get("/stats/prometheus"))[0]
    assert after["canary_tagger_direction_unspecified_total"] - before.get(
        "canary_tagger_direction_unspecified_total", 0) == 1
    assert not any(k.startswith("canary_tagger_restored_total") and after[k] for k in after)
