"""S3 — Weather app step 3 (SEEDS B): cookie `user=tester` anywhere → v2.

SEEDS B needed the regex `^(.*?;)?(user=tester)(;.*)?$` on the whole cookie header; the
filter reads cookies properly: any position, several `cookie` header lines (HTTP/1.1) or
several `cookie` headers (HTTP/2 sends cookie crumbs separately), exact name and value.
"""

import pytest

from canary_e2e.assertions import assert_answered, upstream_saw

TESTERS_TO_V2 = {
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    "rules": [{"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "version": "v2"}],
}

CASES = [
    # (case, cookie header lines, version)
    ("only cookie", ["user=tester"], "v2"),
    ("first of three", ["user=tester; theme=dark; lang=en"], "v2"),
    ("middle of three", ["theme=dark; user=tester; lang=en"], "v2"),
    ("last of three", ["theme=dark; lang=en; user=tester"], "v2"),
    ("no space after separator", ["theme=dark;user=tester"], "v2"),
    ("second cookie header line", ["theme=dark; lang=en", "user=tester"], "v2"),
    ("first cookie header line", ["user=tester", "theme=dark"], "v2"),
    ("value tester2", ["theme=dark; user=tester2"], "v1"),
    ("name xuser", ["xuser=tester; theme=dark"], "v1"),
    ("value Tester (exact is case-sensitive)", ["user=Tester"], "v1"),
    ("tester only inside another value", ["theme=user=tester"], "v1"),
    ("other cookies only", ["theme=dark; lang=en"], "v1"),
    ("no cookie", [], "v1"),
]


@pytest.mark.parametrize("case,cookie_lines,version", CASES, ids=[c[0] for c in CASES])
def test_tester_cookie_gets_v2(envoy_with, http2, case, cookie_lines, version):
    envoy = envoy_with(TESTERS_TO_V2)
    headers = [("cookie", line) for line in cookie_lines]
    reply = envoy.request("/", headers=headers, http2=http2)
    assert_answered(reply, version)
    assert upstream_saw(reply, "x-canary-version") == [version]
    # The filter only reads cookies: every crumb still reaches the upstream.
    crumbs_sent = sorted(c.strip() for line in cookie_lines for c in line.split(";"))
    crumbs_seen = sorted(c.strip() for line in upstream_saw(reply, "cookie") for c in line.split(";"))
    assert crumbs_seen == crumbs_sent
