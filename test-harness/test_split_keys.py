"""SPEC §4 split keys and stickiness, beyond the S5 seed: the key chain (cookie, header,
source IP) in order, the sticky cookie as the implicit first key, its `secure` option, a
split with no key, and a custom `tag_header` that the routes follow."""

import itertools
import re

import pytest

from canary_e2e.assertions import assert_answered, upstream_saw
from canary_e2e.spec_hash import split_version

WEIGHTS = [{"version": "v2", "percent": 50}, {"version": "v1", "percent": 50}]
RULE = "keyed"
KEYED = {
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    "tag_header": "x-version",
    "client_ip": {"from": "xff", "trusted_hops": 1},
    "rules": [
        {"name": RULE, "match": {"header": "x-keyed", "present": True},
         "split": {"weights": WEIGHTS, "key": ["cookie:uid", "header:x-user-id", "source_ip"]}},
        {"name": "unkeyed", "match": {"header": "x-unkeyed", "present": True}, "split": {"weights": WEIGHTS}},
    ],
    "sticky_cookie": {"name": "canary-uid", "secure": True},
}


def keys_on(version: str, candidates, count: int) -> list[str]:
    """The first `count` candidate keys that SPEC §3 puts on `version` for this rule."""
    return list(itertools.islice((k for k in candidates if split_version(WEIGHTS, RULE, k) == version), count))


# Keys chosen so that the source being used is visible: the two keys of a case are on
# different versions, so answering with one of them proves which source was hashed.
USER_ON_V2, USER_ON_V1 = keys_on("v2", (f"u{n}" for n in range(1000)), 1)[0], \
    keys_on("v1", (f"u{n}" for n in range(1000)), 1)[0]
IP_ON_V2, IP_ON_V1 = keys_on("v2", (f"203.0.113.{n}" for n in range(1, 255)), 1)[0], \
    keys_on("v1", (f"203.0.113.{n}" for n in range(1, 255)), 1)[0]

CASES = [
    # (case, headers, version)
    ("cookie uid", {"cookie": f"uid={USER_ON_V2}"}, "v2"),
    ("cookie uid before header", {"cookie": f"uid={USER_ON_V1}", "x-user-id": USER_ON_V2}, "v1"),
    ("header when no cookie", {"x-user-id": USER_ON_V2, "x-forwarded-for": IP_ON_V1}, "v2"),
    ("source ip when no cookie or header (v2)", {"x-forwarded-for": IP_ON_V2}, "v2"),
    ("source ip when no cookie or header (v1)", {"x-forwarded-for": IP_ON_V1}, "v1"),
    ("sticky cookie is the implicit first key", {"cookie": f"uid={USER_ON_V1}; canary-uid={USER_ON_V2}"}, "v2"),
]


@pytest.mark.parametrize("case,headers,version", CASES, ids=[c[0] for c in CASES])
def test_the_first_present_key_source_is_hashed(envoy_with, http2, case, headers, version):
    envoy = envoy_with(KEYED)
    reply = envoy.request("/", headers={"x-keyed": "1", **headers}, http2=http2)
    assert_answered(reply, version)
    assert upstream_saw(reply, "x-version") == [version]  # the custom tag header
    assert not reply.headers.get_list("set-cookie"), "a key was present: no sticky id"


def test_custom_tag_header_replaces_the_default_one(envoy_with, http2):
    envoy = envoy_with(KEYED)
    # The routes match x-version; a client-sent x-version is stripped (untrusted) and
    # x-canary-version is just another header now.
    reply = envoy.request("/", headers={"x-version": "v3", "x-canary-version": "v3"}, http2=http2)
    assert_answered(reply, "v1")
    assert upstream_saw(reply, "x-version") == ["v1"]
    assert upstream_saw(reply, "x-canary-version") == ["v3"]


def test_split_without_a_key_issues_a_secure_sticky_cookie_each_time(envoy_with, http2):
    envoy = envoy_with(KEYED)
    ids, versions = set(), set()
    for _ in range(20):
        reply = envoy.request("/", headers={"x-unkeyed": "1"}, http2=http2)
        (cookie,) = reply.headers.get_list("set-cookie")
        sticky = re.fullmatch(r"canary-uid=([0-9a-f]{32}); Path=/; Max-Age=2592000; HttpOnly; "
                              r"SameSite=Lax; Secure", cookie)
        assert sticky, cookie
        ids.add(sticky.group(1))
        versions.add(reply.body["version"])
        assert reply.body["version"] == split_version(WEIGHTS, "unkeyed", sticky.group(1))
    assert len(ids) == 20, "every anonymous request gets a fresh id"
    assert versions == {"v1", "v2"}
