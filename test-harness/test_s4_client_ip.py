"""S4 — mqtt app (SEEDS C): client IP 192.168.0.58 taken from `x-forwarded-for` → v2.

SEEDS C matched the whole XFF header exactly, which breaks when one more proxy appends
itself. Here the client IP is found like Envoy's xff_num_trusted_hops: skip `trusted_hops`
entries from the right, take the next. The e2e chain is

    client (sends XFF as an L7 load balancer in front of the gateway would have appended it)
      → Envoy edge (use_remote_address: appends the peer; for a loopback peer Envoy appends
        its own local address instead, so the last entry is not necessarily 127.0.0.1)
      → canary-tagger with {"from": "xff", "trusted_hops": 1}

so the entry left of Envoy's own is the client. Entries a client prepends change nothing.
192.168.0.58 and the documentation addresses only ever appear as header values here.
"""

import pytest

from canary_e2e.assertions import assert_answered, upstream_saw

OFFICE_TO_V2 = {
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    "client_ip": {"from": "xff", "trusted_hops": 1},
    "rules": [{"name": "office", "match": {"source_ip": ["192.168.0.58/32", "2001:db8::/32"]},
               "version": "v2"}],
}

CASES = [
    # (case, x-forwarded-for sent by the client (None: not sent), version)
    ("office ip appended by the load balancer", "192.168.0.58", "v2"),
    ("client-prepended entries do not hide the office ip", "203.0.113.50, 192.168.0.58", "v2"),
    ("spoof: office ip prepended before the real client", "192.168.0.58, 203.0.113.9", "v1"),
    ("spoof: office ip prepended twice", "192.168.0.58, 192.168.0.58, 203.0.113.9", "v1"),
    ("another client", "203.0.113.9", "v1"),
    ("neighbour address outside the /32", "192.168.0.59", "v1"),
    ("office ipv6 range", "2001:db8::7", "v2"),
    ("malformed entry falls back to the peer", "not-an-ip", "v1"),
    ("no x-forwarded-for: too few entries, peer address", None, "v1"),
]


@pytest.mark.parametrize("case,xff,version", CASES, ids=[c[0] for c in CASES])
def test_office_ip_via_trusted_hops_gets_v2(envoy_with, http2, case, xff, version):
    envoy = envoy_with(OFFICE_TO_V2)
    headers = {"x-forwarded-for": xff} if xff is not None else {}
    reply = envoy.request("/mqtt", headers=headers, http2=http2)
    assert_answered(reply, version)
    assert upstream_saw(reply, "x-canary-version") == [version]
    forwarded = ", ".join(upstream_saw(reply, "x-forwarded-for"))
    if xff is not None:
        # Envoy appended one entry to what the client sent; the filter did not rewrite XFF.
        assert forwarded.startswith(xff) and forwarded.count(",") == xff.count(",") + 1, forwarded
