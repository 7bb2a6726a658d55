"""`canary-tagger render --api gateway-api` under the real Envoy: the edge listener's routes
are the RENDERED HTTPRoute, translated by canary_e2e/httproute.py with Gateway API's
precedence, and the seed scenarios S2 (User-Agent) and S3 (tester cookie) go through it
with the module deciding. The version that answers is the one the filter tagged: the
route's header rules and its last rule (the default) agree with the filter.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from canary_e2e.assertions import assert_answered, upstream_saw
from canary_e2e.httproute import envoy_routes
from test_cli_agreement import cli_binary
from test_s2_user_agent import CASES as S2_CASES, CHROME_TO_V2
from test_s3_cookie import CASES as S3_CASES, TESTERS_TO_V2

SERVICE = "frontend"


def rendered_route(config: dict, tmp_path) -> dict:
    """The Gateway's HTTPRoute that `render --api gateway-api` writes for `config`."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    done = subprocess.run([str(cli_binary()), "render", str(path), "--api", "gateway-api",
                           "--gateway", "gw", "--service", SERVICE], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    (route,) = [doc for doc in yaml.safe_load_all(done.stdout)
                if doc and doc["kind"] == "HTTPRoute"]
    return route


def version_cluster(backend_ref: dict) -> str:
    """frontend-v2 → the harness's cluster v2."""
    name = backend_ref["name"]
    assert name.startswith(f"{SERVICE}-"), name
    return name.removeprefix(f"{SERVICE}-")


@pytest.fixture(scope="module")
def routed_by_render(envoy_with, tmp_path_factory):
    def start(config: dict, **options):
        route = rendered_route(config, tmp_path_factory.mktemp("render"))
        return envoy_with(config, versions=config["versions"],
                          edge_routes=envoy_routes(route, version_cluster), **options)
    return start


def test_the_rendered_routes_put_the_default_last(tmp_path):
    routes = envoy_routes(rendered_route(CHROME_TO_V2, tmp_path), version_cluster)
    assert [r["route"]["cluster"] for r in routes] == ["v2", "v3", "v1"]
    assert "headers" not in routes[-1]["match"]


@pytest.mark.parametrize("case,user_agent,version", S2_CASES, ids=[c[0] for c in S2_CASES])
def test_s2_through_the_rendered_route(routed_by_render, http2, case, user_agent, version):
    envoy = routed_by_render(CHROME_TO_V2)
    assert "rule-0-match-0" in envoy.config_path.read_text(), "the translated routes are used"
    headers = {"user-agent": user_agent} if user_agent is not None else {}
    reply = envoy.request("/forecast", headers=headers, http2=http2)
    assert_answered(reply, version)
    assert upstream_saw(reply, "x-canary-version") == [version]


@pytest.mark.parametrize("case,cookie_lines,version", S3_CASES, ids=[c[0] for c in S3_CASES])
def test_s3_through_the_rendered_route(routed_by_render, http2, case, cookie_lines, version):
    envoy = routed_by_render(TESTERS_TO_V2)
    reply = envoy.request("/", headers=[("cookie", line) for line in cookie_lines], http2=http2)
    assert_answered(reply, version)


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
