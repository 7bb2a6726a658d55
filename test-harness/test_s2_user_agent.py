"""S2 — Weather app step 2 (SEEDS B): `User-Agent` matching `.*Chrome.*` → v2, others v1.

The regex must match the whole value, as Istio's regex match does; matching is
case-sensitive unless `ignore_case` is set. `response_header` shows the decision to the
client.
"""

import pytest

from canary_e2e.assertions import assert_answered, upstream_saw

CHROME_TO_V2 = {
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    "rules": [{"name": "chrome", "match": {"header": "user-agent", "regex": ".*Chrome.*"}, "version": "v2"}],
    "response_header": "x-canary-version",
}

CHROME_DESKTOP = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
CHROME_ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36")
EDGE = CHROME_DESKTOP + " Edg/120.0.2210.91"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.2 Safari/605.1.15")

CASES = [
    # (case, user-agent (None: not sent), version)
    ("chrome desktop", CHROME_DESKTOP, "v2"),
    ("chrome android", CHROME_ANDROID, "v2"),
    ("edge (carries Chrome)", EDGE, "v2"),
    ("headless chrome", "Mozilla/5.0 HeadlessChrome/120.0.0.0", "v2"),
    ("exactly Chrome", "Chrome", "v2"),
    ("firefox", FIREFOX, "v1"),
    ("safari", SAFARI, "v1"),
    ("curl", "curl/7.88.1", "v1"),
    ("lower-case chrome does not match", "mozilla/5.0 chrome/120", "v1"),
    ("no user-agent", None, "v1"),
]


@pytest.mark.parametrize("case,user_agent,version", CASES, ids=[c[0] for c in CASES])
def test_chrome_users_get_v2(envoy_with, http2, case, user_agent, version):
    envoy = envoy_with(CHROME_TO_V2)
    headers = {"user-agent": user_agent} if user_agent is not None else {}
    reply = envoy.request("/forecast", headers=headers, http2=http2)
    assert_answered(reply, version)
    assert upstream_saw(reply, "x-canary-version") == [version]
    assert reply.headers.get_list("x-canary-version") == [version], dict(reply.headers)
