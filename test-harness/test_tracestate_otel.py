"""SPEC §12: does the gateway's `canary` tracestate member survive Envoy's own tracer?

The gateway Envoy runs canary-tagger with `"tracestate": true` (test_waypoint.py's GATEWAY)
and its connection manager traces with `envoy.tracers.opentelemetry`, exporting by OTLP/gRPC
to a loopback port nothing listens on (the spans go nowhere; the tracer still runs).

Measured (Envoy 1.36.4, 1.38.2 and 1.40.0 alike, HTTP/1.1 and HTTP/2, with and without
`spawn_upstream_span`): the tracer reads `traceparent`/`tracestate` when the connection
manager starts the request's span, before any HTTP filter runs, and the router writes them
again on the upstream request after every HTTP filter ran — `traceparent` as its own span
(the client's trace id, a new span id), `tracestate` as the client sent it (empty when the
client sent no valid `traceparent`). So the filter's member never reaches the upstream, and a
client's own `canary` member, removed by the filter, is put back verbatim. The tag header and
`baggage` are not the tracer's and come through as the filter wrote them.

What survives: a second canary-tagger instance as the router's upstream HTTP filter
(`upstream_http_filters`), which runs on the upstream request after the tracer wrote it. It
needs no rules: it trusts every source (`trusted_tag_sources` 0.0.0.0/0 and ::/0), so it
keeps the tag the first instance decided (the first instance already removed the client's)
and writes `canary=TAG` first in the tracer's `tracestate`, replacing the client's member.
"""

from __future__ import annotations

import re

import pytest

from canary_e2e.assertions import assert_answered, baggage_members, describe, upstream_saw
from canary_e2e.ecds import parse_prometheus
from canary_e2e.envoy_process import opentelemetry_tracing
from test_waypoint import GATEWAY

# The second instance: no rules, trusts the tag the first one set, writes the member.
UPSTREAM = {
    "schema": 1,
    "versions": GATEWAY["versions"],
    "default_version": GATEWAY["default_version"],
    "tracestate": True,
    "trusted_tag_sources": ["0.0.0.0/0", "::/0"],
}
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]")
CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"  # the W3C Trace Context example
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE_ID}-00f067aa0ba902b7-01"
TESTER = {"x-user-group": "testers"}

CASES = [
    # (case, headers sent, version)
    ("no trace context", TESTER, "v2"),
    ("client traceparent", {**TESTER, "traceparent": CLIENT_TRACEPARENT}, "v2"),
    ("client traceparent and tracestate with a canary member",
     {**TESTER, "traceparent": CLIENT_TRACEPARENT,
      "tracestate": "rojo=00f067aa0ba902b7,canary=v3,congo=t61rcWkgMzE"}, "v2"),
    ("client tracestate without traceparent", {"tracestate": "canary=v3,rojo=1"}, "v1"),
]
CASE_IDS = [c[0] for c in CASES]
SPAWN = pytest.mark.parametrize("spawn_upstream_span", [False, True],
                                ids=["parent span", "spawn_upstream_span"])


def every_case_under_both_spans(test):
    """`test` for each of CASES, under the parent span and with spawn_upstream_span."""
    return SPAWN(pytest.mark.parametrize("case,headers,version", CASES, ids=CASE_IDS)(test))


def gateway(envoy_with, spawn_upstream_span: bool, upstream_instance: bool):
    return envoy_with(GATEWAY, edge_tracing=opentelemetry_tracing(spawn_upstream_span=spawn_upstream_span),
                      upstream_plugin_config=UPSTREAM if upstream_instance else None)


def request_through_the_tracer(envoy_with, http2, spawn_upstream_span, headers, version, *,
                               upstream_instance: bool):
    """One request through the traced gateway, `headers` sent: `version` answered, the tag
    as decided reached the upstream, and so did the tracer's own traceparent."""
    envoy = gateway(envoy_with, spawn_upstream_span, upstream_instance)
    reply = envoy.request("/", headers=headers, http2=http2)
    assert_answered(reply, version)
    assert upstream_saw(reply, "x-canary-version") == [version]
    assert_the_tracers_traceparent(reply, headers)
    return reply


def assert_the_tracers_traceparent(reply, sent: dict):
    """The upstream's traceparent is valid and the tracer's own span: the client's trace
    id when it sent one, never the client's span id."""
    [value] = upstream_saw(reply, "traceparent")
    parsed = TRACEPARENT.fullmatch(value)
    assert parsed, f"invalid traceparent {value!r}"
    if "traceparent" in sent:
        trace_id, span_id = TRACEPARENT.fullmatch(sent["traceparent"]).groups()
        assert parsed.group(1) == trace_id, value
        assert parsed.group(2) != span_id, "the tracer's span, not the client's"


@every_case_under_both_spans
def test_the_tracer_drops_our_member_and_puts_back_the_clients_tracestate(
        envoy_with, http2, spawn_upstream_span, case, headers, version):
    reply = request_through_the_tracer(envoy_with, http2, spawn_upstream_span, headers, version,
                                       upstream_instance=False)
    # Without a valid client traceparent the tracer starts a trace with an empty tracestate;
    # with one, it writes the client's tracestate back as it came, canary member and all.
    client_state = headers.get("tracestate", "") if "traceparent" in headers else ""
    assert upstream_saw(reply, "tracestate") == [client_state], describe(reply)


@every_case_under_both_spans
def test_an_upstream_filter_instance_puts_our_member_first_after_the_tracer(
        envoy_with, http2, spawn_upstream_span, case, headers, version):
    reply = request_through_the_tracer(envoy_with, http2, spawn_upstream_span, headers, version,
                                       upstream_instance=True)
    [state] = upstream_saw(reply, "tracestate")
    members = state.split(",")
    assert members[0] == f"canary={version}", state
    assert sum(m.startswith("canary=") for m in members) == 1, "the client's member is gone"
    others = [m for m in headers.get("tracestate", "").split(",") if m and not m.startswith("canary=")]
    # The tracer keeps the client's tracestate only under the client's traceparent.
    assert members[1:] == (others if "traceparent" in headers else []), state


def test_the_tracer_leaves_the_tag_and_baggage_alone(envoy_with, http2):
    envoy = envoy_with({**GATEWAY, "baggage": True}, edge_tracing=opentelemetry_tracing())
    reply = envoy.request("/", headers={**TESTER, "traceparent": CLIENT_TRACEPARENT,
                                        "baggage": "tenant=acme,canary-version=v3"}, http2=http2)
    assert_answered(reply, "v2")
    assert upstream_saw(reply, "x-canary-version") == ["v2"]
    assert baggage_members(upstream_saw(reply, "baggage")) == ["tenant=acme", "canary-version=v2"]


def test_the_upstream_instance_counts_every_request_again_as_a_trusted_tag(envoy_with):
    envoy = gateway(envoy_with, False, upstream_instance=True)

    def requests_total() -> dict[str, int]:
        samples = parse_prometheus(envoy.admin_get("/stats/prometheus"))[0]
        return {k: v for k, v in samples.items() if k.startswith("canary_tagger_requests_total")}

    before = requests_total()
    assert_answered(envoy.request("/", headers=TESTER), "v2")
    after = requests_total()
    delta = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    assert delta == {
        'canary_tagger_requests_total{decided_by="rule",rule="testers",version="v2"}': 1,
        'canary_tagger_requests_total{decided_by="trusted_tag",version="v2"}': 1,
    }, delta
