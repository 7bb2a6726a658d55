"""S1 — the istio-ingressgateway Lua script (SEEDS A), as a `normalize` entry.

gRPC requests whose `grpcsvc` is missing or not one of v1–v4 must reach the upstream with
`grpcsvc: v1`; known values pass untouched; non-gRPC requests are not touched at all. The
`pick` rule then routes on grpcsvc (`version_from`), as SEEDS A's VirtualService did, so
the answering version proves the route followed the normalized header.
"""

import pytest

from canary_e2e.assertions import assert_answered, upstream_saw

GRPC_NORMALIZE = {
    "schema": 1,
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    "normalize": [
        {"header": "grpcsvc", "allowed": ["v1", "v2", "v3", "v4"], "default": "v1",
         "when": {"header": "content-type", "prefix": "application/grpc"}},
    ],
    "rules": [
        {"name": "pick", "match": {"header": "grpcsvc", "present": True},
         "version_from": "header:grpcsvc"},
    ],
}

GRPC = "application/grpc"
CASES = [
    # (case, content-type, grpcsvc sent (None: absent), grpcsvc upstream sees ([]: absent), version)
    ("grpc, grpcsvc missing -> v1", GRPC, None, ["v1"], "v1"),
    ("grpc, grpcsvc v9 -> v1", GRPC, "v9", ["v1"], "v1"),
    ("grpc, grpcsvc empty -> v1", GRPC, "", ["v1"], "v1"),
    ("grpc, grpcsvc V2 (case differs, not allowed) -> v1", GRPC, "V2", ["v1"], "v1"),
    ("grpc+proto, grpcsvc missing -> v1", "application/grpc+proto", None, ["v1"], "v1"),
    ("grpc, grpcsvc v1 untouched", GRPC, "v1", ["v1"], "v1"),
    ("grpc, grpcsvc v2 untouched", GRPC, "v2", ["v2"], "v2"),
    ("grpc, grpcsvc v3 untouched", GRPC, "v3", ["v3"], "v3"),
    # v4 is allowed but not a deployed version here: kept as is, pick does not match.
    ("grpc, grpcsvc v4 untouched", GRPC, "v4", ["v4"], "v1"),
    ("json, grpcsvc missing stays missing", "application/json", None, [], "v1"),
    ("json, grpcsvc v9 untouched", "application/json", "v9", ["v9"], "v1"),
    ("json, grpcsvc v2 untouched", "application/json", "v2", ["v2"], "v2"),
    ("no content-type, grpcsvc missing stays missing", None, None, [], "v1"),
]


@pytest.mark.parametrize("case,content_type,sent,seen,version", CASES, ids=[c[0] for c in CASES])
def test_grpcsvc_is_normalized_for_grpc_only(envoy_with, http2, case, content_type, sent, seen, version):
    envoy = envoy_with(GRPC_NORMALIZE)
    headers = {}
    if content_type is not None:
        headers["content-type"] = content_type
        headers["te"] = "trailers"
    if sent is not None:
        headers["grpcsvc"] = sent
    reply = envoy.request("/weather.Forecast/Get", headers=headers, http2=http2, method="POST")
    assert_answered(reply, version)
    assert upstream_saw(reply, "grpcsvc") == seen
    assert upstream_saw(reply, "x-canary-version") == [version]
