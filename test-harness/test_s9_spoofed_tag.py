"""S9 — a client cannot pick its version by sending the tag header (SPEC §1.2).

The e2e client connects from 127.0.0.1 (client_ip defaults to the peer address; one config
takes it from XFF with one trusted hop instead). Outside `trusted_tag_sources` a
client-sent `x-canary-version` is removed and the rules decide; inside, a *known* version
is kept and no rule runs, an unknown one is replaced.
"""

import pytest

from canary_e2e.assertions import assert_answered, upstream_saw

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


def chrome_rule_config(**extra) -> dict:
    return {
        "versions": ["v1", "v2", "v3"],
        "default_version": "v1",
        "rules": [{"name": "chrome", "match": {"header": "user-agent", "regex": ".*Chrome.*"}, "version": "v2"}],
        **extra,
    }


CONFIGS = {
    "no trusted sources": chrome_rule_config(),
    "trusted 10.0.0.0/8 only": chrome_rule_config(trusted_tag_sources=["10.0.0.0/8"]),
    "trusted 127.0.0.1/32": chrome_rule_config(trusted_tag_sources=["127.0.0.1/32"]),
    # The client IP comes from XFF (one trusted hop): trust follows that address, not the peer.
    "trusted 10.20.0.0/16 via xff": chrome_rule_config(trusted_tag_sources=["10.20.0.0/16"],
                                                       client_ip={"from": "xff", "trusted_hops": 1}),
}

CASES = [
    # (config, case, user-agent, client-sent tag(s), version answering and seen upstream[, xff])
    ("no trusted sources", "v3 ignored, firefox computed v1", FIREFOX, ["v3"], "v1"),
    ("no trusted sources", "v3 ignored, chrome computed v2", CHROME, ["v3"], "v2"),
    ("no trusted sources", "v1 ignored, chrome computed v2", CHROME, ["v1"], "v2"),
    ("no trusted sources", "two v3 headers ignored", FIREFOX, ["v3", "v3"], "v1"),
    ("trusted 10.0.0.0/8 only", "v3 ignored, firefox computed v1", FIREFOX, ["v3"], "v1"),
    ("trusted 10.0.0.0/8 only", "v3 ignored, chrome computed v2", CHROME, ["v3"], "v2"),
    ("trusted 127.0.0.1/32", "v3 kept, no rule runs", CHROME, ["v3"], "v3"),
    ("trusted 127.0.0.1/32", "v1 kept over the chrome rule", CHROME, ["v1"], "v1"),
    ("trusted 127.0.0.1/32", "unknown v9 replaced, firefox computed v1", FIREFOX, ["v9"], "v1"),
    ("trusted 127.0.0.1/32", "unknown v9 replaced, chrome computed v2", CHROME, ["v9"], "v2"),
    ("trusted 127.0.0.1/32", "no tag, rules decide", CHROME, [], "v2"),
    ("trusted 10.20.0.0/16 via xff", "v3 kept for a client in range", CHROME, ["v3"], "v3", "10.20.1.5"),
    ("trusted 10.20.0.0/16 via xff", "v3 ignored for a client out of range", CHROME, ["v3"], "v2",
     "10.21.1.5"),
    ("trusted 10.20.0.0/16 via xff", "v3 ignored when the trusted ip is only prepended", FIREFOX, ["v3"],
     "v1", "10.20.1.5, 203.0.113.9"),
    ("trusted 10.20.0.0/16 via xff", "v3 ignored from the loopback peer itself", FIREFOX, ["v3"], "v1"),
]
CASES = [case if len(case) == 6 else (*case, None) for case in CASES]


@pytest.mark.parametrize("config_name,case,user_agent,sent_tags,version,xff", CASES,
                         ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_client_sent_tag_is_only_kept_from_trusted_sources(envoy_with, http2, config_name, case,
                                                            user_agent, sent_tags, version, xff):
    envoy = envoy_with(CONFIGS[config_name])
    headers = [("user-agent", user_agent)] + [("x-canary-version", tag) for tag in sent_tags]
    if xff is not None:
        headers.append(("x-forwarded-for", xff))
    reply = envoy.request("/", headers=headers, http2=http2)
    assert_answered(reply, version)
    assert upstream_saw(reply, "x-canary-version") == [version]
