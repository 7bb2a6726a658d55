"""S8 — traffic mirroring (SEEDS E): the shadow copy carries the same tag as the primary.

Envoy's route `request_mirror_policies` sends a copy of each request to the shadow cluster
after the filter ran, so the shadow sees the computed tag, never a client-sent one.
"""

import itertools
import time

import pytest

from canary_e2e.assertions import assert_answered, upstream_saw

TESTERS_AND_CHROME = {
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    "rules": [
        {"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "version": "v2"},
        {"name": "chrome", "match": {"header": "user-agent", "regex": ".*Chrome.*"}, "version": "v2"},
    ],
}
MIRROR_WAIT_S = 5.0
_probe_ids = itertools.count()

CASES = [
    ("tester cookie", {"cookie": "user=tester"}, "v2"),
    ("chrome", {"user-agent": "Mozilla/5.0 Chrome/120.0"}, "v2"),
    ("everyone else", {"user-agent": "curl/7.88.1"}, "v1"),
    ("client-sent v3 is replaced before mirroring", {"x-canary-version": "v3"}, "v1"),
]


def mirrored_copies(envoy, probe: str) -> list[dict]:
    deadline = time.monotonic() + MIRROR_WAIT_S
    while time.monotonic() < deadline:
        copies = [r for r in envoy.shadow.shadow.requests() if r["headers"].get("x-probe") == probe]
        if copies:
            return copies
        time.sleep(0.02)
    return []


@pytest.mark.parametrize("case,headers,version", CASES, ids=[c[0] for c in CASES])
def test_shadow_sees_the_same_tag_as_the_primary(envoy_with, http2, case, headers, version):
    envoy = envoy_with(TESTERS_AND_CHROME, mirror=True)
    probe = f"s8-{next(_probe_ids)}-{int(http2)}"
    reply = envoy.request("/reviews", headers={**headers, "x-probe": probe}, http2=http2)
    assert_answered(reply, version)
    assert upstream_saw(reply, "x-canary-version") == [version]
    copies = mirrored_copies(envoy, probe)
    assert len(copies) == 1, f"shadow got {len(copies)} copies of {probe} within {MIRROR_WAIT_S}s"
    assert copies[0]["headers"].get("x-canary-version") == version
