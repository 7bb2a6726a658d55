"""S7 — progressive canary (SEEDS D, E): v2 at 10 % → 50 % → 100 %, by config change only.

Each step is a new plugin configuration on a freshly started Envoy (as a WasmPlugin update
would deliver it). Because the canary is listed first, its bucket range only grows: a user
on v2 at one step is on v2 at every later step, and the v2 share tracks the percent.
"""

import pytest

from canary_e2e.assertions import TimeBudget, answered_by, upstream_saw
from canary_e2e.spec_hash import split_version

RULE_NAME = "ramp"
STEPS = [10, 50, 100]
USERS = 300
# The share is deterministic for fixed uids (SPEC §3); 300 users put it within a few points.
SHARE_TOLERANCE_POINTS = 5
LOOP_BUDGET_S = 120  # 900 requests and three Envoy starts


def weights(canary_percent: float) -> list[dict]:
    return [{"version": "v2", "percent": canary_percent}, {"version": "v1", "percent": 100 - canary_percent}]


def ramp_config(canary_percent: float) -> dict:
    return {
        "versions": ["v1", "v2", "v3"],
        "default_version": "v1",
        "rules": [{"name": RULE_NAME, "match": {"cookie": "uid", "present": True},
                   "split": {"weights": weights(canary_percent), "key": ["cookie:uid"]}}],
    }


def test_canary_users_never_move_back_while_the_canary_grows(envoy_with, http2):
    uids = [f"user-{n}" for n in range(USERS)]
    history: dict[int, dict[str, str]] = {}
    budget = TimeBudget(LOOP_BUDGET_S, "the 10 -> 50 -> 100 % ramp")
    for percent in STEPS:
        envoy = envoy_with(ramp_config(percent))
        step = {}
        for uid in uids:
            budget.check()
            reply = envoy.request("/", headers={"cookie": f"uid={uid}"}, http2=http2)
            step[uid] = answered_by(reply)
            assert upstream_saw(reply, "x-canary-version") == [step[uid]]
        history[percent] = step

        share = 100 * sum(1 for v in step.values() if v == "v2") / USERS
        assert abs(share - percent) <= SHARE_TOLERANCE_POINTS, f"{share:.1f}% on v2 at the {percent}% step"
        differ = [uid for uid in uids if step[uid] != split_version(weights(percent), RULE_NAME, uid)]
        assert not differ, f"at {percent}%: {len(differ)} users differ from SPEC §3, e.g. {differ[:5]}"

    for earlier, later in zip(STEPS, STEPS[1:]):
        moved_back = [uid for uid in uids if history[earlier][uid] == "v2" and history[later][uid] != "v2"]
        assert not moved_back, f"{len(moved_back)} users left v2 going {earlier}% -> {later}%: {moved_back[:5]}"
    assert set(history[100].values()) == {"v2"}
