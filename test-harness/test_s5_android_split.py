"""S5 — Weather app exercise (SEEDS B): half of the Android users on v2, sticky per user.

Plain Istio can only split per request. The filter hashes the user's `uid` cookie (SPEC §3),
so the split is per user: the share is near 50 % and a user never flips. An Android user
without any key gets a generated `canary-uid` cookie and then stays put as well.
"""

import re

import pytest

from canary_e2e.assertions import TimeBudget, answered_by, assert_answered, describe, upstream_saw
from canary_e2e.spec_hash import split_version

RULE_NAME = "android-half"  # also the hash salt: split.salt defaults to the rule name
WEIGHTS = [{"version": "v2", "percent": 50}, {"version": "v1", "percent": 50}]
ANDROID_HALF = {
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    "rules": [{"name": RULE_NAME, "match": {"header": "user-agent", "contains": "Android"},
               "split": {"weights": WEIGHTS, "key": ["cookie:uid"]}}],
    "sticky_cookie": {"name": "canary-uid", "max_age_s": 2592000},
}
ANDROID_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36")
IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1")

USERS = 1000
REQUESTS_PER_USER = 5  # 5,000 requests per protocol, over one keep-alive connection
LOOP_BUDGET_S = 180  # about 1 ms per request when idle; generous for a loaded 2-core CI box
STICKY_COOKIE = re.compile(
    r"canary-uid=([0-9a-f]{32}); Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax")
ANONYMOUS_USERS = 20


def test_android_users_split_half_and_half_and_stay(envoy_with, http2):
    envoy = envoy_with(ANDROID_HALF)
    seen: dict[str, set[str]] = {f"user-{n}": set() for n in range(USERS)}
    budget = TimeBudget(LOOP_BUDGET_S, f"{USERS * REQUESTS_PER_USER} Android requests")
    for _ in range(REQUESTS_PER_USER):
        budget.check()
        for uid, versions in seen.items():
            reply = envoy.request("/forecast", headers={"user-agent": ANDROID_UA, "cookie": f"uid={uid}"},
                                  http2=http2)
            version = answered_by(reply)
            assert upstream_saw(reply, "x-canary-version") == [version]
            assert not reply.headers.get_list("set-cookie"), f"{uid} has a key: no cookie expected"
            versions.add(version)

    flipped = {uid: v for uid, v in seen.items() if len(v) != 1}
    assert not flipped, f"{len(flipped)} users changed version, e.g. {list(flipped.items())[:5]}"
    on_v2 = sum(1 for v in seen.values() if v == {"v2"})
    assert {v for versions in seen.values() for v in versions} == {"v1", "v2"}
    assert 0.45 * USERS <= on_v2 <= 0.55 * USERS, f"{on_v2} of {USERS} users on v2"

    # Per SPEC §3 each user's version is fixed by the normative hash, on any platform.
    differ = {uid: (v, split_version(WEIGHTS, RULE_NAME, uid)) for uid, (v,) in seen.items()
              if v != split_version(WEIGHTS, RULE_NAME, uid)}
    assert not differ, (f"{len(differ)} of {USERS} users differ from the SPEC §3 bucket "
                        f"(got, expected): {list(differ.items())[:5]}")


def test_anonymous_android_user_gets_a_sticky_cookie_and_keeps_its_version(envoy_with, http2):
    envoy = envoy_with(ANDROID_HALF)
    versions_seen = set()
    for _ in range(ANONYMOUS_USERS):
        first = envoy.request("/", headers={"user-agent": ANDROID_UA}, http2=http2)
        version = answered_by(first)
        cookies = first.headers.get_list("set-cookie")
        assert len(cookies) == 1, describe(first) + f"\nset-cookie: {cookies}"
        sticky = STICKY_COOKIE.fullmatch(cookies[0])
        assert sticky, f"unexpected Set-Cookie {cookies[0]!r}"
        uid = sticky.group(1)
        # The generated id is hashed like any key: the first answer is already its bucket.
        assert version == split_version(WEIGHTS, RULE_NAME, uid), (uid, version)
        for _ in range(5):
            again = envoy.request("/", headers={"user-agent": ANDROID_UA, "cookie": f"canary-uid={uid}"},
                                  http2=http2)
            assert_answered(again, version)
            assert upstream_saw(again, "x-canary-version") == [version]
            assert not again.headers.get_list("set-cookie"), "the cookie came back: no new id"
        versions_seen.add(version)
    # 20 random ids all landing on one side of a 50/50 split would be a 2^-19 event.
    assert versions_seen == {"v1", "v2"}


OTHER_USERS = {
    "iphone": {"user-agent": IPHONE_UA},
    "iphone-with-uid": {"user-agent": IPHONE_UA, "cookie": "uid=user-1"},
    "no-user-agent": {},
}


@pytest.mark.parametrize("headers", OTHER_USERS.values(), ids=OTHER_USERS.keys())
def test_other_users_stay_on_v1_without_a_cookie(envoy_with, http2, headers):
    envoy = envoy_with(ANDROID_HALF)
    reply = envoy.request("/", headers=headers, http2=http2)
    assert_answered(reply, "v1")
    assert upstream_saw(reply, "x-canary-version") == ["v1"]
    assert not reply.headers.get_list("set-cookie")
