"""Waypoint mode (SPEC §12) with two waypoint replicas, under real Envoys
(canary_e2e/mesh.py, AmbientUnderTest):

    client ─► gateway Envoy (test_mesh's gateway rules, "tracestate": true)
           ─► waypoint replica A ─► frontend app vN
    frontend vN ─► replica A (even requests) or replica B (odd ones) ─► backend vN

Replica A sees both hops of the even requests; replica B never sees a first hop, so it
knows nothing A remembered. The backend route matches nothing but the tag. The test
picks the second hop's replica per request (`x-test-replica`), not Envoy's load
balancer, so every share below is deterministic and asserted exactly: what the backend
answered per request, and every canary-tagger counter on each replica.

Protocols: client → gateway → replica A on HTTP/1.1 and on HTTP/2 (h2c; the gateway
keeps the client's protocol); replica A → app, app → replica, replica → backend are
HTTP/1.1 (the test's apps and backends speak only that).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from canary_e2e.assertions import describe
from canary_e2e.ecds import parse_prometheus
from canary_e2e.mesh import REPLICA_HEADER, AmbientUnderTest, new_trace_id, traceparent
from canary_e2e.upstreams import header_values
from test_mesh import CHROME, FIREFOX, GATEWAY as MESH_GATEWAY, TAG, expected_version
from test_waypoint import WAYPOINT

# test_mesh's gateway (Chrome → v2, everyone else 50/50 v3/v1 by the `user` cookie, with
# baggage) writing tracestate too.
GATEWAY = {**MESH_GATEWAY, "tracestate": True}
DEFAULT = WAYPOINT["default_version"]
# What each app copies onto its backend call (first path segment).
FORWARDING = {
    "tag": (TAG,),
    "baggage": ("baggage",),
    "trace-context": ("traceparent", "tracestate"),
    "traceparent": ("traceparent",),
    "nothing": (),
}
# Sources that travel with the request restore on any replica.
CARRIED = {"tag": "header", "baggage": "baggage", "trace-context": "tracestate"}
REQUESTS_PER_CASE = 1000
CLIENT_THREADS = 8

# The user mix, the same for every case: request i is a Chrome user (v2) when i % 3 == 0,
# else user "ambient-user-i" split by the cookie (SPEC §3, so fixed). Asserted below; the
# README's counts are these.
USERS_PER_VERSION = {"v1": 336, "v2": 334, "v3": 330}
# Of them, the second hop of the odd requests goes to replica B.
ON_B_PER_VERSION = {"v1": 176, "v2": 167, "v3": 157}


@pytest.fixture(scope="module")
def ambient(tmp_path_factory):
    mesh = AmbientUnderTest(GATEWAY, WAYPOINT, tmp_path_factory.mktemp("ambient"),
                            forwarding=FORWARDING).start()
    yield mesh
    mesh.stop()


def user(index: int) -> tuple[dict, str]:
    """Request `index`'s client headers and the version the gateway gives it."""
    agent = CHROME if index % 3 == 0 else FIREFOX
    name = f"ambient-user-{index}"
    version = expected_version(name, agent)
    return {"user-agent": agent, "cookie": f"user={name}"}, version


def replica(index: int) -> str:
    return "a" if index % 2 == 0 else "b"


def expected_backend(case: str, second_hop: str, version: str) -> tuple[str, str]:
    """(source, version) of the second hop: a carrier restores anywhere, the trace only
    on replica A, which remembered it on the first hop; otherwise the default."""
    if case in CARRIED:
        return CARRIED[case], version
    if case == "traceparent" and second_hop == "a":
        return "trace", version
    return "default", DEFAULT


def test_the_user_mix_reaches_every_version():
    mix = Counter(user(i)[1] for i in range(REQUESTS_PER_CASE))
    on_b = Counter(user(i)[1] for i in range(REQUESTS_PER_CASE) if replica(i) == "b")
    assert dict(mix) == USERS_PER_VERSION
    assert dict(on_b) == ON_B_PER_VERSION


def counters(envoy) -> Counter:
    samples = parse_prometheus(envoy.admin_get("/stats/prometheus"))[0]
    return Counter({k: v for k, v in samples.items() if k.startswith("canary_tagger_")})


def expected_counters(case: str) -> dict[str, Counter]:
    """Every canary-tagger counter each replica must have moved by for one run."""
    expected = {"a": Counter(), "b": Counter()}
    for index in range(REQUESTS_PER_CASE):
        version = user(index)[1]
        # First hop, always on A: a known tag, kept (counted as `header`) and remembered
        # under the request's traceparent and x-request-id.
        expected["a"][f'canary_tagger_restored_total{{source="header",version="{version}"}}'] += 1
        expected["a"][f'canary_tagger_trace_remembered_total{{version="{version}"}}'] += 1
        hop = replica(index)
        source, restored = expected_backend(case, hop, version)
        expected[hop][f'canary_tagger_restored_total{{source="{source}",version="{restored}"}}'] += 1
        if case == "tag":
            # The forwarded tag is known: kept and remembered under the x-request-id the
            # replica generated for the call.
            expected[hop][f'canary_tagger_trace_remembered_total{{version="{version}"}}'] += 1
        if source == "default":
            # The trace source was asked: the call's traceparent (B never saw it) or the
            # x-request-id Envoy generated for it is in no table.
            expected[hop]["canary_tagger_trace_misses_total"] += 1
    return expected


@pytest.mark.parametrize("case", list(FORWARDING))
def test_two_replicas_cross_no_version(ambient, http2, case):
    def one(index: int):
        headers, version = user(index)
        headers.update({"traceparent": traceparent(new_trace_id()), REPLICA_HEADER: replica(index)})
        return index, version, ambient.request(f"/{case}/page?i={index}", headers=headers, http2=http2)

    before = {name: counters(r) for name, r in ambient.replicas.items()}
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        results = list(pool.map(one, range(REQUESTS_PER_CASE)))
    after = {name: counters(r) for name, r in ambient.replicas.items()}

    problems, outcomes = [], Counter()
    for index, version, reply in results:
        if reply.status != 200 or reply.body.get("role") != "frontend":
            problems.append(f"request {index}: no frontend answer: {describe(reply)}")
            continue
        backend = reply.body.get("backend", {})
        got = backend.get("version")
        if reply.body["version"] != version or got is None:
            problems.append(f"request {index}: frontend {reply.body['version']} for a {version} user, "
                            f"backend {backend}")
            continue
        if got not in (version, DEFAULT):
            problems.append(f"CROSSING: request {index} ({version}, second hop on "
                            f"{replica(index)}) reached backend {got}")
        source, restored = expected_backend(case, replica(index), version)
        if (got, header_values(backend["headers"], TAG)) != (restored, [restored]):
            problems.append(f"request {index} ({version}, second hop on {replica(index)}): "
                            f"backend {got} with tag {header_values(backend['headers'], TAG)}, "
                            f"expected {restored} ({source})")
        outcomes[(replica(index), "kept" if got == version else "default")] += 1
    assert not problems, (f"{len(problems)} of {REQUESTS_PER_CASE} went wrong ({case}); first:\n"
                          + "\n".join(problems[:5]) + f"\n{ambient.state()}")

    # The shares, exactly. Half the second hops land on each replica.
    half = REQUESTS_PER_CASE // 2
    if case in CARRIED:
        shares = {("a", "kept"): half, ("b", "kept"): half}
    elif case == "traceparent":
        # A restores all of its half from its memory; B sends its half to the default,
        # which is their own version for the v1 users only.
        shares = {("a", "kept"): half, ("b", "kept"): ON_B_PER_VERSION[DEFAULT],
                  ("b", "default"): half - ON_B_PER_VERSION[DEFAULT]}
    else:
        on_a_default = USERS_PER_VERSION[DEFAULT] - ON_B_PER_VERSION[DEFAULT]
        shares = {("a", "kept"): on_a_default, ("a", "default"): half - on_a_default,
                  ("b", "kept"): ON_B_PER_VERSION[DEFAULT],
                  ("b", "default"): half - ON_B_PER_VERSION[DEFAULT]}
    assert dict(outcomes) == shares

    # Every request counted once per replica it went through, by the source that decided.
    expected = expected_counters(case)
    for name in ("a", "b"):
        delta = {k: after[name][k] - before[name][k] for k in after[name]
                 if after[name][k] != before[name][k]}
        assert delta == dict(expected[name]), f"replica {name}"
