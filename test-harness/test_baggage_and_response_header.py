"""SPEC §1.5–1.6: the decision also goes into W3C `baggage` (other members kept) and, when
`response_header` is set, onto the response (SEEDS C adds `user: vN`)."""

import pytest

from canary_e2e.assertions import assert_answered, baggage_members, upstream_saw

TESTERS_WITH_BAGGAGE = {
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    "rules": [{"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "version": "v2"}],
    "baggage": True,
    "response_header": "user",
}


CASES = [
    # (case, cookie, baggage sent (None: none), version, members the upstream must see)
    ("tester, no baggage", "user=tester", None, "v2", ["canary-version=v2"]),
    ("tester, other members kept", "user=tester", "userId=alice,isProduction=false", "v2",
     ["userId=alice", "isProduction=false", "canary-version=v2"]),
    ("tester, stale canary-version replaced", "user=tester", "canary-version=v1, userId=alice", "v2",
     ["userId=alice", "canary-version=v2"]),
    ("everyone else, no baggage", "user=alice", None, "v1", ["canary-version=v1"]),
    ("everyone else, spoofed canary-version replaced", "user=alice", "canary-version=v3", "v1",
     ["canary-version=v1"]),
]


@pytest.mark.parametrize("case,cookie,baggage,version,members", CASES, ids=[c[0] for c in CASES])
def test_baggage_carries_the_version_and_response_names_it(envoy_with, http2, case, cookie, baggage,
                                                            version, members):
    envoy = envoy_with(TESTERS_WITH_BAGGAGE)
    headers = {"cookie": cookie}
    if baggage is not None:
        headers["baggage"] = baggage
    reply = envoy.request("/", headers=headers, http2=http2)
    assert_answered(reply, version)
    assert upstream_saw(reply, "x-canary-version") == [version]
    seen = baggage_members(upstream_saw(reply, "baggage"))
    assert sorted(seen) == sorted(members), seen
    assert reply.headers.get_list("user") == [version], dict(reply.headers)
    assert "x-canary-version" not in reply.headers  # only the configured response header
