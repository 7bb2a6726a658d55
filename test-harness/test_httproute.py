"""canary_e2e/httproute.py on its own: HTTPRoute rules become Envoy routes in the order of
Gateway API's precedence (the spec's HTTPRouteRule `matches` documentation), no Envoy run."""

from __future__ import annotations

import pytest

from canary_e2e.httproute import envoy_match, envoy_routes


def route(*rules) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r"}, "spec": {"rules": list(rules)}}


def rule(backend: str, *matches) -> dict:
    out = {"backendRefs": [{"name": backend, "port": 80}]}
    if matches:
        out["matches"] = list(matches)
    return out


def header(name: str, value: str, kind: str = "Exact") -> dict:
    return {"type": kind, "name": name, "value": value}


def order(http_route: dict) -> list[str]:
    return [r["route"]["cluster"] for r in envoy_routes(http_route, lambda ref: ref["name"])]


def test_a_header_match_goes_before_the_rule_without_match_whatever_the_list_order():
    assert order(route(rule("default"), rule("v2", {"headers": [header("x-tag", "v2")]}))) == \
        ["v2", "default"]


def test_more_header_matches_first_then_rule_order():
    two = {"headers": [header("x-tag", "v2"), header("x-beta", "1")]}
    assert order(route(rule("one-a", {"headers": [header("x-tag", "v2")]}),
                       rule("one-b", {"headers": [header("x-tag", "v3")]}),
                       rule("two", two))) == ["two", "one-a", "one-b"]


def test_exact_path_then_longest_prefix_then_method_before_headers():
    assert order(route(
        rule("headers", {"headers": [header("a", "1"), header("b", "2")]}),
        rule("method", {"method": "POST"}),
        rule("short", {"path": {"type": "PathPrefix", "value": "/a"}}),
        rule("long", {"path": {"type": "PathPrefix", "value": "/a/b"}}),
        rule("exact", {"path": {"type": "Exact", "value": "/a"}}),
    )) == ["exact", "long", "short", "method", "headers"]


def test_query_params_break_a_tie_of_headers():
    assert order(route(rule("plain", {"headers": [header("a", "1")]}),
                       rule("query", {"headers": [header("a", "1")],
                                      "queryParams": [{"type": "Exact", "name": "q", "value": "1"}]}))) \
        == ["query", "plain"]


def test_matches_of_a_rule_are_each_a_route_and_conditions_are_anded():
    routes = envoy_routes(route(rule("v2", {"headers": [header("X-Tag", "v2")]},
                                    {"headers": [header("baggage", ".*canary=v2.*", "RegularExpression")],
                                     "method": "GET"})),
                          lambda ref: ref["name"])
    assert [r["match"] for r in routes] == [
        {"prefix": "/", "headers": [
            {"name": "baggage", "string_match": {"safe_regex": {"regex": ".*canary=v2.*"}}},
            {"name": ":method", "string_match": {"exact": "GET"}}]},
        {"prefix": "/", "headers": [{"name": "x-tag", "string_match": {"exact": "v2"}}]},
    ], "method beats a lone header; header names are lower-cased"


def test_a_rule_without_matches_matches_every_path_and_prefixes_are_whole_segments():
    assert envoy_match({}) == {"prefix": "/"}
    assert envoy_match({"path": {"type": "PathPrefix", "value": "/shop/"}}) == \
        {"path_separated_prefix": "/shop"}
    assert envoy_match({"path": {"type": "Exact", "value": "/x"}}) == {"path": "/x"}


def test_weighted_backends_and_unsupported_types():
    (only,) = envoy_routes(route({"backendRefs": [{"name": "a", "weight": 90}, {"name": "b", "weight": 10}]}),
                           lambda ref: ref["name"])
    assert only["route"]["weighted_clusters"]["clusters"] == [
        {"name": "a", "weight": 90}, {"name": "b", "weight": 10}]
    with pytest.raises(ValueError):
        envoy_match({"path": {"type": "RegularExpression", "value": "/.*"}})


def test_a_request_mirror_filter_copies_the_rules_requests():
    mirrored = rule("v1")
    mirrored["filters"] = [{"type": "RequestMirror",
                            "requestMirror": {"backendRef": {"name": "shadow", "port": 80}}}]
    (only,) = envoy_routes(route(mirrored), lambda ref: ref["name"])
    assert only["route"] == {"cluster": "v1", "timeout": "10s",
                             "request_mirror_policies": [{"cluster": "shadow"}]}
    for unsupported in ({"type": "RequestHeaderModifier", "requestHeaderModifier": {}},
                        {"type": "RequestMirror",
                         "requestMirror": {"backendRef": {"name": "shadow"}, "percent": 10}}):
        with pytest.raises(ValueError):
            envoy_routes(route({**rule("v1"), "filters": [unsupported]}), lambda ref: ref["name"])
