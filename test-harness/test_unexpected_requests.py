"""SPEC §1: anything unexpected in a request — non-UTF-8 bytes, huge or duplicated
cookies, garbage XFF, many tag headers, broken percent-encoding — yields a deterministic
decision and never a 5xx. Each case is sent three times; all three must agree."""

import pytest

from canary_e2e.assertions import answered_by, upstream_saw
from canary_e2e.fixtures import spec_example

SEED_CONFIG = spec_example()  # the SPEC §2 example, minus baggage (covered elsewhere)
del SEED_CONFIG["baggage"]

MANY_CRUMBS = "; ".join(f"c{n}={'x' * 40}" for n in range(150))  # about 7 KB
CASES = [
    # (case, path, headers as (name, bytes) pairs, expected version or None: any, but stable)
    ("non-utf8 user-agent", "/", [("user-agent", b"Mozilla \xff\xfe Chrome/1")], None),
    ("non-utf8 unrelated header keeps the tester decision", "/",
     [("x-junk", b"\xff\xfe"), ("cookie", b"user=tester")], "v2"),
    ("non-utf8 cookie value", "/", [("cookie", b"user=tester\xff")], None),
    ("huge cookie header, tester last", "/", [("cookie", f"{MANY_CRUMBS}; user=tester".encode())], "v2"),
    ("huge cookie header, no tester", "/", [("cookie", MANY_CRUMBS.encode())], "v1"),
    ("same cookie name twice", "/", [("cookie", b"user=alice; user=tester")], None),
    ("forty cookie header lines", "/", [("cookie", f"c{n}=1".encode()) for n in range(40)], "v1"),
    ("cookie without a value", "/", [("cookie", b"user")], "v1"),
    ("empty cookie header", "/", [("cookie", b"")], "v1"),
    ("garbage xff", "/", [("x-forwarded-for", b",,, ::::, not-an-ip")], "v1"),
    ("out-of-range ipv4 in xff", "/", [("x-forwarded-for", b"999.168.0.58")], "v1"),
    ("xff with a port", "/", [("x-forwarded-for", b"192.168.0.58:1234")], None),
    ("very long xff", "/", [("x-forwarded-for", ", ".join(["198.51.100.7"] * 400).encode())], "v1"),
    ("fifty spoofed tag headers", "/", [("x-canary-version", b"v3")] * 50, "v1"),
    ("broken percent-encoding in query", "/?beta=%zz&x=%", [("user-agent", b"Android")], None),
    ("very long path", "/" + "a" * 4000, [], "v1"),
    ("grpc with a non-utf8 grpcsvc", "/", [("content-type", b"application/grpc"), ("grpcsvc", b"v\xff")], "v1"),
]


@pytest.mark.parametrize("case,path,headers,version", CASES, ids=[c[0] for c in CASES])
def test_unexpected_input_gets_a_stable_decision_never_a_5xx(envoy_with, http2, case, path, headers, version):
    envoy = envoy_with(SEED_CONFIG)
    # A fixed uid keeps the Android split (if it applies) from issuing random sticky ids.
    headers = [(name, value) for name, value in headers] + [("x-user-id", b"fixed-user")]
    answers = []
    for _ in range(3):
        reply = envoy.request(path, headers=headers, http2=http2)
        answers.append(answered_by(reply))
        assert upstream_saw(reply, "x-canary-version") == [answers[-1]]
        assert reply.headers.get("x-canary-version") == answers[-1]
    assert len(set(answers)) == 1, f"decisions differ across identical requests: {answers}"
    assert answers[0] in SEED_CONFIG["versions"]
    if version is not None:
        assert answers[0] == version
