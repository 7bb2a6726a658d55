"""A config with no rules and no `normalize` (every request gets `default_version`, or a
trusted client's tag): the filter then asks Envoy only whether the tag header and
`baggage` are present and, when neither is, decides without reading the header map
(BENCHMARKS.md, lever h). These cases prove the decisions and writes are those of the full
read: the tag, `baggage`, the response header, the spoof guard for both, and the counters.
"""

import pytest

from canary_e2e.assertions import assert_answered, baggage_members, upstream_saw, wasm_counters

NO_RULES = {
    "versions": ["v1", "v2", "v3"],
    "default_version": "v2",
    "trusted_tag_sources": ["127.0.0.1/32"],
    "baggage": True,
    "response_header": "x-served-by",
}
NO_RULES_UNTRUSTED = {"versions": ["v1", "v2", "v3"], "default_version": "v1"}

REQUESTS = "canary_tagger_requests"
STRIPPED = "canary_tagger_client_tag_stripped_total"
DEFAULT_V2 = f"{REQUESTS}.decided_by=.=default;.;version=.=v2;.;total"
TRUSTED_V3 = f"{REQUESTS}.decided_by=.=trusted_tag;.;version=.=v3;.;total"

CASES = [
    # (case, headers sent, version, baggage members upstream, counters changed)
    ("no probed header", [("user-agent", "curl/8"), ("cookie", "a=1")], "v2",
     ["canary-version=v2"], {DEFAULT_V2: 1}),
    ("other baggage members kept", [("baggage", "tenant=acme")], "v2",
     ["tenant=acme", "canary-version=v2"], {DEFAULT_V2: 1}),
    ("baggage already current", [("baggage", "canary-version=v2")], "v2",
     ["canary-version=v2"], {DEFAULT_V2: 1, STRIPPED: 1}),
    ("trusted tag kept", [("x-canary-version", "v3")], "v3",
     ["canary-version=v3"], {TRUSTED_V3: 1}),
    ("unknown tag stripped", [("x-canary-version", "v9")], "v2",
     ["canary-version=v2"], {DEFAULT_V2: 1, STRIPPED: 1}),
    ("repeated tag stripped", [("x-canary-version", "v3"), ("x-canary-version", "v3")], "v2",
     ["canary-version=v2"], {DEFAULT_V2: 1, STRIPPED: 1}),
    ("baggage member without tag stripped", [("baggage", "canary-version=v3;p=1,a=1")], "v2",
     ["a=1", "canary-version=v2"], {DEFAULT_V2: 1, STRIPPED: 1}),
    ("empty tag value stripped", [("x-canary-version", "")], "v2",
     ["canary-version=v2"], {DEFAULT_V2: 1, STRIPPED: 1}),
]


@pytest.mark.parametrize("case,headers,version,members,counted", CASES, ids=[c[0] for c in CASES])
def test_no_rules_decides_as_the_full_header_read_would(envoy_with, http2, case, headers, version,
                                                          members, counted):
    envoy = envoy_with(NO_RULES)
    before = wasm_counters(envoy)
    reply = envoy.request("/", headers=headers, http2=http2)
    assert_answered(reply, version)
    assert upstream_saw(reply, "x-canary-version") == [version]
    assert baggage_members(upstream_saw(reply, "baggage")) == members
    assert reply.headers.get_list("x-served-by") == [version]
    after = wasm_counters(envoy)
    changed = {name: after[name] - before.get(name, 0) for name in after
               if after[name] != before.get(name, 0)}
    assert changed == counted


@pytest.mark.parametrize("headers,baggage_seen", [
    ([], []),
    ([("x-canary-version", "v3")], []),
    ([("baggage", "canary-version=v3")], []),
    ([("baggage", "canary-version=v3,tenant=acme")], ["tenant=acme"]),
], ids=["nothing", "untrusted tag", "member only", "member among others"])
def test_no_rules_without_baggage_tags_and_strips(envoy_with, http2, headers, baggage_seen):
    envoy = envoy_with(NO_RULES_UNTRUSTED)
    reply = envoy.request("/", headers=headers, http2=http2)
    assert_answered(reply, "v1")
    assert upstream_saw(reply, "x-canary-version") == ["v1"]
    assert upstream_saw(reply, "baggage") == baggage_seen
