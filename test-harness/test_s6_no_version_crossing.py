"""S6 — versions must not cross (SEEDS B step 3, SEEDS C): frontend vN calls backend vN.

The filter tags the request once at the edge; frontend vN forwards the tag on its call to
the backend, and the backend route (a plain header match, like a VirtualService) follows
it. The backend hop must not re-decide. We chose to give the internal listener (the
frontend → backend hop) no canary-tagger filter at all, as in Istio where the WasmPlugin
selects the ingress gateway only; the trusted_tag_sources alternative is covered in S9.
"""

import pytest

from canary_e2e.assertions import assert_answered, describe

EDGE_RULES = {
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    "client_ip": {"from": "xff", "trusted_hops": 1},
    "rules": [
        {"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "version": "v2"},
        {"name": "office", "match": {"source_ip": ["192.168.0.58/32"]}, "version": "v3"},
    ],
}

CASES = [
    # (case, request headers, version for the whole call chain)
    ("tester cookie", {"cookie": "lang=en; user=tester"}, "v2"),
    ("office ip", {"x-forwarded-for": "192.168.0.58"}, "v3"),
    ("everyone else", {"cookie": "lang=en"}, "v1"),
    ("client-sent v3 is not trusted at the edge", {"x-canary-version": "v3"}, "v1"),
]


@pytest.mark.parametrize("case,headers,version", CASES, ids=[c[0] for c in CASES])
def test_frontend_and_backend_answer_with_the_same_version(envoy_with, http2, case, headers, version):
    envoy = envoy_with(EDGE_RULES, topology="frontend_backend")
    reply = envoy.request("/page", headers=headers, http2=http2)
    assert_answered(reply, version)
    assert reply.body["role"] == "frontend", describe(reply)
    assert reply.body["headers"]["x-canary-version"] == version
    backend = reply.body["backend"]
    assert backend.get("service") == "backend", describe(reply)
    assert backend["version"] == version, f"frontend {version} reached backend {backend['version']}"
    assert backend["headers"]["x-canary-version"] == version
