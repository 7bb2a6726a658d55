"""`canary-tagger render --api gateway-api` under the real Envoy: the edge listener's routes
are the RENDERED HTTPRoute, translated by canary_e2e/httproute.py with Gateway API's
precedence, and every seed scenario S1–S9 goes through it with the module deciding. The
version that answers is the one the filter tagged: the route's header rules and its last
rule (the default) agree with the filter.

For every seed S1–S9 the seed module's own test body runs with its `envoy_with` replaced
by `routed_by_render`, which starts the same Envoy (same plugin configuration, same
options) but with the rendered routes, so the cases, configurations and assertions are
the seed's, written once. Per seed:

- S1 (gRPC normalize), S2, S3, S5 (Android split), S7 (progressive, three configurations)
  and S9 (spoofed tag, baggage guard): the rendered Gateway HTTPRoute as it is.
- S4 (client IP): as it is; the client IP comes from X-Forwarded-For (the edge appends the
  peer, as in the seed), which the route never reads: only the filter does.
- S6 (no version crossing): the frontend → backend hop is routed by the GAMMA HTTPRoute of
  `render --service backend --mesh` (parent: the Service `backend`), not the harness's
  own tag routes.
- S8 (mirror): `render` writes no mirror, and should not — the plugin configuration has no
  mirror; mirroring is the route's business, as SEEDS E's VirtualService `mirror` was. The
  HTTPRoute way is a `RequestMirror` filter (Gateway API extended support; Istio implements
  it) that the user adds to every rendered rule; the test adds
  `{type: RequestMirror, requestMirror: {backendRef: {name: frontend-shadow, port: 80}}}`
  to each rule, and the shadow sees the tag the filter computed.

No seed needs anything an HTTPRoute cannot express: the cookie, client IP and hash
decisions are the filter's, and the route only matches the tag header.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

import test_s1_grpc_normalize as s1
import test_s2_user_agent as s2
import test_s3_cookie as s3
import test_s4_client_ip as s4
import test_s5_android_split as s5
import test_s6_no_version_crossing as s6
import test_s7_progressive as s7
import test_s8_mirror as s8
import test_s9_baggage_guard as s9_baggage
import test_s9_spoofed_tag as s9_spoof
from canary_e2e.assertions import assert_answered
from canary_e2e.httproute import envoy_routes
from test_cli_agreement import cli_binary
from test_s2_user_agent import CHROME_TO_V2
from test_s3_cookie import TESTERS_TO_V2

SERVICE = "frontend"
BACKEND = "backend"
SHADOW = {"name": f"{SERVICE}-shadow", "port": 80}


def rendered_routes(config: dict, tmp_path, service: str = SERVICE, mesh: bool = False) -> list[dict]:
    """The HTTPRoutes `render --api gateway-api` writes for `config`: the Gateway's, then
    with `mesh` the GAMMA one."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    done = subprocess.run([str(cli_binary()), "render", str(path), "--api", "gateway-api",
                           "--gateway", "gw", "--service", service, *(["--mesh"] if mesh else [])],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc and doc["kind"] == "HTTPRoute"]


def rendered_route(config: dict, tmp_path) -> dict:
    """The Gateway's HTTPRoute that `render --api gateway-api` writes for `config`."""
    (route,) = rendered_routes(config, tmp_path)
    return route


def mesh_route(config: dict, tmp_path, service: str) -> dict:
    """The GAMMA HTTPRoute of `render --mesh`: its parent is the Service itself."""
    (route,) = [r for r in rendered_routes(config, tmp_path, service, mesh=True)
                if r["spec"]["parentRefs"][0].get("kind") == "Service"]
    return route


def with_mirror(route: dict, backend_ref: dict) -> dict:
    """The route with a RequestMirror filter on every rule, as a user adds it."""
    mirrored = json.loads(json.dumps(route))
    for rule in mirrored["spec"]["rules"]:
        rule.setdefault("filters", []).append(
            {"type": "RequestMirror", "requestMirror": {"backendRef": dict(backend_ref)}})
    return mirrored


def version_cluster(backend_ref: dict) -> str:
    """frontend-v2 → the harness's cluster v2 (frontend-shadow → shadow)."""
    name = backend_ref["name"]
    assert name.startswith(f"{SERVICE}-"), name
    return name.removeprefix(f"{SERVICE}-")


def backend_cluster(backend_ref: dict) -> str:
    """backend-v2 is the harness's cluster backend-v2."""
    assert backend_ref["name"].startswith(f"{BACKEND}-"), backend_ref
    return backend_ref["name"]


@pytest.fixture(scope="module")
def routed_by_render(envoy_with, tmp_path_factory):
    """envoy_with's signature and Envoy, with the edge routes (and, for the frontend_backend
    topology, the internal ones) translated from what `render` wrote for the config."""
    def start(config: dict, **options):
        work = tmp_path_factory.mktemp("render")
        route = rendered_route(config, work)
        if options.get("mirror"):
            route = with_mirror(route, SHADOW)
        if options.get("topology") == "frontend_backend":
            options["internal_routes"] = envoy_routes(mesh_route(config, work, BACKEND), backend_cluster)
        envoy = envoy_with(config, versions=config["versions"],
                           edge_routes=envoy_routes(route, version_cluster), **options)
        written = envoy.config_path.read_text()
        assert "rule-0-match-0" in written and "name: tag-" not in written, \
            "every listener uses the translated routes, none the harness's own tag routes"
        return envoy
    return start


def test_the_rendered_routes_put_the_default_last(tmp_path):
    routes = envoy_routes(rendered_route(CHROME_TO_V2, tmp_path), version_cluster)
    assert [r["route"]["cluster"] for r in routes] == ["v2", "v3", "v1"]
    assert "headers" not in routes[-1]["match"]


@pytest.mark.parametrize("sent,version", [(None, "v1"), ("v2", "v1"), ("v3", "v1")])
def test_a_client_sent_tag_never_picks_the_route(routed_by_render, sent, version):
    envoy = routed_by_render(TESTERS_TO_V2)
    reply = envoy.request("/", headers={"x-canary-version": sent} if sent else {})
    assert_answered(reply, version)


@pytest.mark.parametrize("sent,version", [(None, "v1"), ("v2", "v2"), ("v3", "v3"), ("v9", "v1")])
def test_without_the_filter_the_route_follows_the_tag(envoy_with, tmp_path, sent, version):
    """The route alone (no module: as when the filter failed open and a tag came from a
    trusted hop): each tag to its version, anything else to the default."""
    routes = envoy_routes(rendered_route(TESTERS_TO_V2, tmp_path), version_cluster)
    envoy = envoy_with(None, versions=TESTERS_TO_V2["versions"], edge_routes=routes)
    assert "rule-0-match-0" in envoy.config_path.read_text(), "the translated routes are used"
    reply = envoy.request("/", headers={"x-canary-version": sent} if sent else {})
    assert_answered(reply, version)


# ---- S1–S9: each seed's own test body, through the rendered routes (module docstring)

@pytest.mark.parametrize("case,content_type,sent,seen,version", s1.CASES, ids=[c[0] for c in s1.CASES])
def test_s1_through_the_rendered_route(routed_by_render, http2, case, content_type, sent, seen, version):
    s1.test_grpcsvc_is_normalized_for_grpc_only(routed_by_render, http2, case, content_type, sent, seen,
                                                version)


@pytest.mark.parametrize("case,user_agent,version", s2.CASES, ids=[c[0] for c in s2.CASES])
def test_s2_through_the_rendered_route(routed_by_render, http2, case, user_agent, version):
    s2.test_chrome_users_get_v2(routed_by_render, http2, case, user_agent, version)


@pytest.mark.parametrize("case,cookie_lines,version", s3.CASES, ids=[c[0] for c in s3.CASES])
def test_s3_through_the_rendered_route(routed_by_render, http2, case, cookie_lines, version):
    s3.test_tester_cookie_gets_v2(routed_by_render, http2, case, cookie_lines, version)


@pytest.mark.parametrize("case,xff,version", s4.CASES, ids=[c[0] for c in s4.CASES])
def test_s4_through_the_rendered_route(routed_by_render, http2, case, xff, version):
    s4.test_office_ip_via_trusted_hops_gets_v2(routed_by_render, http2, case, xff, version)


def test_s5_android_split_through_the_rendered_route(routed_by_render, http2):
    s5.test_android_users_split_half_and_half_and_stay(routed_by_render, http2)


def test_s5_anonymous_android_user_through_the_rendered_route(routed_by_render, http2):
    s5.test_anonymous_android_user_gets_a_sticky_cookie_and_keeps_its_version(routed_by_render, http2)


@pytest.mark.parametrize("headers", s5.OTHER_USERS.values(), ids=s5.OTHER_USERS.keys())
def test_s5_other_users_through_the_rendered_route(routed_by_render, http2, headers):
    s5.test_other_users_stay_on_v1_without_a_cookie(routed_by_render, http2, headers)


@pytest.mark.parametrize("case,headers,version", s6.CASES, ids=[c[0] for c in s6.CASES])
def test_s6_through_the_rendered_and_mesh_routes(routed_by_render, http2, case, headers, version):
    s6.test_frontend_and_backend_answer_with_the_same_version(routed_by_render, http2, case, headers, version)


def test_s7_through_the_rendered_route(routed_by_render, http2):
    s7.test_canary_users_never_move_back_while_the_canary_grows(routed_by_render, http2)


@pytest.mark.parametrize("case,headers,version", s8.CASES, ids=[c[0] for c in s8.CASES])
def test_s8_through_a_request_mirror_on_the_rendered_route(routed_by_render, http2, case, headers, version):
    s8.test_shadow_sees_the_same_tag_as_the_primary(routed_by_render, http2, case, headers, version)


@pytest.mark.parametrize("case,baggage,trusted,headers,version,members,stripped", s9_baggage.CASES,
                         ids=[c[0] for c in s9_baggage.CASES])
def test_s9_baggage_guard_through_the_rendered_route(routed_by_render, http2, case, baggage, trusted, headers,
                                                     version, members, stripped):
    s9_baggage.test_client_baggage_member_is_stripped_unless_the_tag_is_kept(
        routed_by_render, http2, case, baggage, trusted, headers, version, members, stripped)


@pytest.mark.parametrize("config_name,case,user_agent,sent_tags,version,xff", s9_spoof.CASES,
                         ids=[f"{c[0]}: {c[1]}" for c in s9_spoof.CASES])
def test_s9_spoofed_tag_through_the_rendered_route(routed_by_render, http2, config_name, case, user_agent,
                                                   sent_tags, version, xff):
    s9_spoof.test_client_sent_tag_is_only_kept_from_trusted_sources(
        routed_by_render, http2, config_name, case, user_agent, sent_tags, version, xff)
