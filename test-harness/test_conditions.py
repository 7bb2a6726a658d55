"""SPEC §2 conditions and actions under real Envoy: query (percent-decoded), pseudo-headers,
ignore_case, any/all/not, version_from cookie/header, IPv6 client addresses."""

import pytest

from canary_e2e.assertions import assert_answered, upstream_saw

CONDITIONS = {
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    "client_ip": {"from": "xff", "trusted_hops": 1},
    "rules": [
        {"name": "beta-query", "match": {"query": "beta", "exact": "on air"}, "version": "v3"},
        {"name": "admin-path", "match": {"header": ":path", "prefix": "/admin/"}, "version": "v3"},
        {"name": "deletes", "match": {"header": ":method", "exact": "DELETE"}, "version": "v2"},
        {"name": "staging-host", "match": {"header": ":authority", "suffix": ".staging.example"},
         "version": "v2"},
        {"name": "firefox", "match": {"header": "user-agent", "contains": "firefox", "ignore_case": True},
         "version": "v2"},
        {"name": "any-team", "match": {"any": [{"cookie": "team", "exact": "qa"},
                                               {"header": "x-team", "exact": "qa"}]}, "version": "v3"},
        {"name": "pinned", "match": {"cookie": "pin", "present": True}, "version_from": "cookie:pin"},
        {"name": "lab-v6", "match": {"source_ip": ["2001:db8:1::/48"]}, "version": "v2"},
        {"name": "no-legacy", "match": {"all": [{"header": "x-client", "present": True},
                                                {"not": {"header": "x-client", "prefix": "legacy"}}]},
         "version": "v3"},
    ],
}

CASES = [
    # (case, method, path, headers, authority, version)
    ("query percent-decoded", "GET", "/?a=1&beta=on%20air", {}, None, "v3"),
    ("query plus is not decoded as space here", "GET", "/?beta=on%2Bair", {}, None, "v1"),
    ("query other value", "GET", "/?beta=off", {}, None, "v1"),
    (":path prefix", "GET", "/admin/users", {}, None, "v3"),
    (":path prefix needs the slash", "GET", "/administrator", {}, None, "v1"),
    (":method", "DELETE", "/item", {}, None, "v2"),
    (":authority suffix", "GET", "/", {}, "shop.staging.example", "v2"),
    (":authority other host", "GET", "/", {}, "shop.example", "v1"),
    ("ignore_case contains", "GET", "/", {"user-agent": "Mozilla/5.0 FIREFOX/121"}, None, "v2"),
    ("any: cookie", "GET", "/", {"cookie": "team=qa"}, None, "v3"),
    ("any: header", "GET", "/", {"x-team": "qa"}, None, "v3"),
    ("any: neither", "GET", "/", {"x-team": "dev"}, None, "v1"),
    ("version_from cookie, known version", "GET", "/", {"cookie": "pin=v3"}, None, "v3"),
    ("version_from cookie, unknown version does not match", "GET", "/", {"cookie": "pin=v7"}, None, "v1"),
    ("ipv6 client in range", "GET", "/", {"x-forwarded-for": "2001:db8:1::42"}, None, "v2"),
    ("ipv6 client out of range", "GET", "/", {"x-forwarded-for": "2001:db8:2::42"}, None, "v1"),
    ("all + not: modern client", "GET", "/", {"x-client": "app-9"}, None, "v3"),
    ("all + not: legacy client", "GET", "/", {"x-client": "legacy-1"}, None, "v1"),
]


@pytest.mark.parametrize("case,method,path,headers,authority,version", CASES, ids=[c[0] for c in CASES])
def test_condition_decides(envoy_with, http2, case, method, path, headers, authority, version):
    envoy = envoy_with(CONDITIONS)
    reply = envoy.request(path, headers=headers, http2=http2, method=method, authority=authority)
    assert_answered(reply, version)
    assert upstream_saw(reply, "x-canary-version") == [version]
