"""SPEC §7 — the gateway's spoof guard for `baggage`: sidecars trust its `canary-version`
member, so a client-sent one is always removed (other members kept, properties and all),
unless the client's tag header was kept by the spoof guard (trusted source, known version).
With `baggage: true` the decided version is written as before. Counted like a stripped tag:
`canary_tagger_client_tag_stripped_total` goes up once per request.

The e2e client connects from 127.0.0.1; `trusted_tag_sources` 127.0.0.1/32 makes it trusted.
"""

import pytest

from canary_e2e.assertions import assert_answered, baggage_members, upstream_saw, wasm_counters

STRIPPED = "canary_tagger_client_tag_stripped_total"


def config(baggage: bool, trusted: bool) -> dict:
    return {
        "versions": ["v1", "v2", "v3"],
        "default_version": "v1",
        "rules": [{"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "version": "v2"}],
        "baggage": baggage,
        **({"trusted_tag_sources": ["127.0.0.1/32"]} if trusted else {}),
    }


CASES = [
    # (case, baggage on, trusted, headers sent, version answering, baggage members upstream,
    #  stripped count)
    ("only our member: header removed", False, False,
     [("baggage", "canary-version=v3")], "v1", [], 1),
    ("with properties", False, False,
     [("baggage", "canary-version=v3;source=app;ttl=1")], "v1", [], 1),
    ("among other members", False, False,
     [("baggage", "tenant=acme, canary-version=v3;p=1 ,lang=de")], "v1", ["tenant=acme", "lang=de"], 1),
    ("in a second baggage line", False, False,
     [("baggage", "tenant=acme"), ("baggage", "canary-version=v2")], "v1", ["tenant=acme"], 1),
    ("with an untrusted tag header too: counted once", False, False,
     [("x-canary-version", "v3"), ("baggage", "canary-version=v3")], "v1", [], 1),
    ("a rule decides as usual", False, False,
     [("cookie", "user=tester"), ("baggage", "canary-version=v3,a=1")], "v2", ["a=1"], 1),
    ("no member of ours: untouched", False, False,
     [("baggage", "tenant=acme,canary-versions=x")], "v1", ["tenant=acme", "canary-versions=x"], 0),
    ("trusted source, no tag header: stripped", False, True,
     [("baggage", "canary-version=v3,a=1")], "v1", ["a=1"], 1),
    ("trusted source, kept tag: member kept", False, True,
     [("x-canary-version", "v3"), ("baggage", "canary-version=v3;p=1,a=1")], "v3",
     ["canary-version=v3;p=1", "a=1"], 0),
    ("trusted source, unknown tag: both stripped", False, True,
     [("x-canary-version", "v9"), ("baggage", "canary-version=v3")], "v1", [], 1),
    ("baggage on: member replaced by the decision", True, False,
     [("baggage", "canary-version=v3;p=1,a=1")], "v1", ["a=1", "canary-version=v1"], 1),
    ("baggage on, trusted kept tag: written as the tag", True, True,
     [("x-canary-version", "v3"), ("baggage", "a=1,canary-version=v3")], "v3",
     ["a=1", "canary-version=v3"], 0),
]


@pytest.mark.parametrize("case,baggage,trusted,headers,version,members,stripped", CASES,
                         ids=[c[0] for c in CASES])
def test_client_baggage_member_is_stripped_unless_the_tag_is_kept(
        envoy_with, http2, case, baggage, trusted, headers, version, members, stripped):
    envoy = envoy_with(config(baggage, trusted))
    before = wasm_counters(envoy).get(STRIPPED, 0)
    reply = envoy.request("/", headers=headers, http2=http2)
    assert_answered(reply, version)
    assert upstream_saw(reply, "x-canary-version") == [version]
    seen = upstream_saw(reply, "baggage")
    assert baggage_members(seen) == members, seen
    if not members:
        assert seen == [], "a baggage that held only our member is removed, not left empty"
    assert wasm_counters(envoy).get(STRIPPED, 0) - before == stripped
