"""The harness itself, proven against a plain Envoy (no canary-tagger).

These cases show that the routing table behaves like a user's VirtualService (the tag
header alone picks the version), that the frontend → backend hop and the shadow mirror are
wired, that the Lua option works, and that a bootstrap Envoy rejects makes the test fail
with Envoy's own words. The wasm scenarios build on exactly this plumbing.
"""

from __future__ import annotations

import time

import pytest

from canary_e2e.assertions import assert_answered, upstream_saw
from canary_e2e.envoy_process import EnvoyStartupError, EnvoyUnderTest

ROUTING_TABLE = [
    # (case, client-sent tag, version that must answer)
    ("no tag goes to the default route", None, "v1"),
    ("tag v1", "v1", "v1"),
    ("tag v2", "v2", "v2"),
    ("tag v3", "v3", "v3"),
    ("unknown tag falls through to the default route", "v9", "v1"),
    ("match is exact, not prefix", "v2-beta", "v1"),
]


@pytest.mark.parametrize("case,tag,version", ROUTING_TABLE, ids=[c[0] for c in ROUTING_TABLE])
def test_plain_envoy_routes_on_the_tag_header_only(envoy_with, http2, case, tag, version):
    envoy = envoy_with(None)
    reply = envoy.request("/route-check", headers={"x-canary-version": tag} if tag else {}, http2=http2)
    assert_answered(reply, version)
    assert upstream_saw(reply, "x-canary-version") == ([tag] if tag else [])
    assert reply.http_version == ("HTTP/2" if http2 else "HTTP/1.1")


def test_upstream_reports_repeated_headers_as_a_list(envoy_with):
    envoy = envoy_with(None)
    reply = envoy.request("/", headers=[("x-repeat", "a"), ("x-repeat", "b")])
    assert upstream_saw(reply, "x-repeat") == ["a", "b"]
    assert reply.body["headers"]["x-repeat"] == ["a", "b"]


@pytest.mark.parametrize("tag", ["v1", "v2", "v3"])
def test_frontend_calls_backend_of_the_same_tag_through_the_internal_listener(envoy_with, http2, tag):
    envoy = envoy_with(None, topology="frontend_backend")
    reply = envoy.request("/", headers={"x-canary-version": tag}, http2=http2)
    assert_answered(reply, tag)
    assert reply.body["role"] == "frontend"
    backend = reply.body["backend"]
    assert backend.get("service") == "backend", backend
    assert backend["version"] == tag
    assert backend["headers"]["x-canary-version"] == tag


def test_shadow_records_the_mirrored_request(envoy_with, http2):
    envoy = envoy_with(None, mirror=True)
    probe = f"plumbing-{time.monotonic_ns()}"
    reply = envoy.request("/mirrored", headers={"x-canary-version": "v2", "x-probe": probe}, http2=http2)
    assert_answered(reply, "v2")
    deadline = time.monotonic() + 5
    mirrored = []
    while not mirrored and time.monotonic() < deadline:
        mirrored = [r for r in envoy.shadow.shadow.requests() if r["headers"].get("x-probe") == probe]
        time.sleep(0.02)
    assert len(mirrored) == 1
    assert mirrored[0]["headers"]["x-canary-version"] == "v2"


LUA_TAG_V3 = """
function envoy_on_request(handle)
  handle:headers():replace("x-canary-version", "v3")
end
"""


def test_lua_filter_option_sets_the_tag_and_the_route_follows(envoy_with, http2):
    envoy = envoy_with(None, lua_code=LUA_TAG_V3)
    reply = envoy.request("/", http2=http2)
    assert_answered(reply, "v3")
    assert upstream_saw(reply, "x-canary-version") == ["v3"]


def test_a_bootstrap_envoy_rejects_fails_with_envoys_output(tmp_path):
    broken = EnvoyUnderTest(lua_code="function (", work_dir=tmp_path)
    with pytest.raises(EnvoyStartupError) as failure:
        broken.start()
    broken.stop()
    assert "envoy --mode validate rejected" in str(failure.value)
    assert "script load error" in failure.value.validate_output


def test_admin_interface_serves_stats(envoy_with):
    envoy = envoy_with(None)
    envoy.request("/")
    assert "http.edge.downstream_rq_total" in envoy.admin_get("/stats")
    assert "envoy_http_downstream_rq_total" in envoy.admin_get("/stats/prometheus")
    assert "starting main dispatch loop" in envoy.log_text()
