"""SPEC §9 / issue 13 — time-based ramps: a split whose first version grows by itself.

The filter reads the wall clock once a second (a proxy-wasm tick in the root context) and
moves the split's bucket ranges; requests only read them. These tests run real Envoys on
this machine's clock, so the test and the filter share it, and predict every answer with
an independent Python model of the ramp (`RampModel`, SPEC §3 hash from spec_hash.py).

A filter's ranges are those of the second of its last tick, which is up to one tick
period old: an answer sent at wall time t must be the model's answer for some second in
[floor(t) - TICK_LAG_S, floor(t_answered)]. Every answer is checked against that window.

test_a_ramp_grows_second_by_second_and_two_gateways_agree
    A 20-second ramp 10 → 100 % starting a few seconds after the test computes it, under a
    steady stream from 500 users (cookie uid), each request sent to two Envoys with the
    same configuration, one after the other. Asserted: every answer is the model's within
    the tick window; no user once on the canary is ever answered by another version; the
    two Envoys agree on a user unless the model moved that user within the window of the
    pair; the canary share of each second rises step by step from 10 to 100 % (many
    distinct steps); the ramp_percent gauge, read once a second, rises the same way.
test_a_ramp_that_has_not_started_holds_the_configured_weights
test_a_ramp_that_has_ended_serves_to_and_the_others_keep_their_proportions
test_a_reload_mid_ramp_with_a_higher_to_moves_nobody_back
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from canary_e2e.assertions import TimeBudget, answered_by
from canary_e2e.ecds import EcdsEnvoy, parse_prometheus, series
from canary_e2e.envoy_process import require_wasm_module
from canary_e2e.spec_hash import bucket

RULE = "ramp"
USERS = 500
UIDS = [f"ramp-user-{n}" for n in range(USERS)]
RAMP_S = 20
# Envoy ticks every 1000 ms; the ranges of an answer are those of the last tick's second.
TICK_LAG_S = 2
GAUGE = "canary_tagger_ramp_percent"


def rfc3339(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass(frozen=True)
class RampModel:
    """SPEC §9, written independently of src/ramp.rs: the first weight grows linearly (whole
    buckets, rounded down, whole seconds) and the others share the rest in proportion
    (cumulative ends, rounded down)."""
    weights: tuple[tuple[str, float], ...]   # (version, percent) in the listed order
    start: int
    duration_s: int
    to: float

    def config(self, **extra) -> dict:
        return {
            "versions": ["v1", "v2", "v3"],
            "default_version": "v1",
            "rules": [{"name": RULE, "match": {"cookie": "uid", "present": True},
                       "split": {"weights": [{"version": v, "percent": p} for v, p in self.weights],
                                 "ramp": {"start": rfc3339(self.start), "duration_s": self.duration_s,
                                          "to": self.to},
                                 "key": ["cookie:uid"]}}],
            **extra,
        }

    @property
    def canary(self) -> str:
        return self.weights[0][0]

    def first_buckets(self, now: int) -> int:
        first, to = round(self.weights[0][1] * 100), round(self.to * 100)
        elapsed = min(max(now - self.start, 0), self.duration_s)
        return first + (to - first) * elapsed // self.duration_s

    def ends(self, now: int) -> list[int]:
        first = self.first_buckets(now)
        others = [round(p * 100) for _, p in self.weights[1:]]
        total, rest, so_far, ends = sum(others), 10_000 - first, 0, [first]
        for weight in others:
            so_far += weight
            ends.append(first + (rest * so_far // total if total else rest))
        return ends

    def version(self, uid: str, now: int) -> str:
        b = bucket(RULE, uid)
        return next(v for (v, _), end in zip(self.weights, self.ends(now)) if b < end)

    def versions_between(self, uid: str, sent: float, answered: float) -> set[str]:
        """What a filter may answer for `uid` between these wall times (see module doc)."""
        return {self.version(uid, s) for s in range(math.floor(sent) - TICK_LAG_S, math.floor(answered) + 1)}


def ask(envoy, uid: str) -> str:
    return answered_by(envoy.request("/", headers={"cookie": f"uid={uid}"}))


def gauge(envoy) -> int:
    samples, types = parse_prometheus(envoy.admin_get("/stats/prometheus"))
    assert types.get(GAUGE) == "gauge", f"{GAUGE} is not a gauge: {types.get(GAUGE)}"
    return samples[series(GAUGE, {"rule": RULE})]


def wait_until(wall_time: float):
    time.sleep(max(0.0, wall_time - time.time()))


def test_a_ramp_grows_second_by_second_and_two_gateways_agree(envoy_with):
    require_wasm_module()
    # Starts after both Envoys are up: a few seconds of configured weights come first.
    model = RampModel((("v2", 10), ("v1", 90)), start=int(time.time()) + 6, duration_s=RAMP_S, to=100)
    gateways = [envoy_with(model.config()), envoy_with(model.config(), log_level="warning")]
    end = model.start + RAMP_S
    budget = TimeBudget(60, "the 20-second ramp")

    on_canary: dict[tuple[int, str], bool] = {}     # per gateway and user: answered by v2 yet
    per_second: dict[int, list[int]] = {}           # second -> [on canary, answers]
    gauges: dict[int, list[int]] = {}               # second -> gauge of each gateway
    mismatches, disagreements, moved_back, requests = [], [], [], 0
    uid_index = 0
    while time.time() < end + TICK_LAG_S + 2 and requests < 200_000:
        budget.check()
        second = math.floor(time.time())
        if second not in gauges:
            gauges[second] = [gauge(g) for g in gateways]
        uid = UIDS[uid_index % USERS]
        uid_index += 1
        sent = time.time()
        answers = [ask(g, uid) for g in gateways]
        answered = time.time()
        requests += len(answers)
        allowed = model.versions_between(uid, sent, answered)
        for index, answer in enumerate(answers):
            if answer not in allowed:
                mismatches.append((uid, "AB"[index], answer, sorted(allowed), rfc3339(int(sent))))
            if on_canary.get((index, uid)) and answer != model.canary:
                moved_back.append((uid, "AB"[index], answer, rfc3339(int(sent))))
            on_canary[index, uid] = on_canary.get((index, uid), False) or answer == model.canary
        if answers[0] != answers[1] and len(allowed) == 1:
            disagreements.append((uid, answers, rfc3339(int(sent))))
        tally = per_second.setdefault(math.floor(sent), [0, 0])
        tally[0] += answers.count(model.canary)
        tally[1] += len(answers)

    assert not mismatches, f"{len(mismatches)} answers outside the ramp's tick window, e.g. {mismatches[:5]}"
    assert not moved_back, f"{len(moved_back)} users left the canary, e.g. {moved_back[:5]}"
    assert not disagreements, f"the gateways disagreed beyond one tick: {disagreements[:5]}"

    shares = {s: 100 * on / total for s, (on, total) in sorted(per_second.items())}
    print(f"\n{requests} requests, {len(on_canary) // 2} users; v2 share per second: "
          + ", ".join(f"{s - model.start:+d}s {share:.0f}%" for s, share in shares.items()))
    print("ramp_percent per second (A, B): "
          + ", ".join(f"{s - model.start:+d}s {a}/{b}" for s, (a, b) in sorted(gauges.items())))
    before = [share for s, share in shares.items() if s < model.start]
    after = [share for s, share in shares.items() if s > end + TICK_LAG_S]
    assert before and all(share < 25 for share in before), f"before the start: {before}"
    assert after and all(share == 100 for share in after), f"after the end: {after}"
    # The share of the users asked in each second of the ramp is the model's for them, so
    # it climbs with the ramp: at least one new step in most seconds, 10 → 100.
    during = [share for s, share in shares.items() if model.start + TICK_LAG_S < s < end]
    rising = sum(1 for a, b in zip(during, during[1:]) if b > a)
    assert rising >= len(during) // 2 and len(during) >= RAMP_S - 6, f"shares during the ramp: {during}"
    # The gauge: whole percents, never down, 10 before the start, 100 at the end, and a
    # value per second in between.
    for index in (0, 1):
        values = [pair[index] for _, pair in sorted(gauges.items())]
        assert values == sorted(values), f"gateway {'AB'[index]}'s ramp_percent went down: {values}"
        assert values[0] == 10 and values[-1] == 100, values
        assert len(set(values)) >= RAMP_S - 6, f"ramp_percent steps: {values}"
        for s, pair in gauges.items():
            window = {model.first_buckets(t) // 100 for t in range(s - TICK_LAG_S, s + 1)}
            assert pair[index] in window, f"ramp_percent {pair[index]} at {s - model.start:+d}s, expected one of {window}"


def test_a_ramp_that_has_not_started_holds_the_configured_weights(envoy_with):
    require_wasm_module()
    model = RampModel((("v2", 10), ("v3", 30), ("v1", 60)), start=int(time.time()) + 3600,
                      duration_s=600, to=100)
    envoy = envoy_with(model.config())
    answers = {uid: ask(envoy, uid) for uid in UIDS}
    expected = {uid: model.version(uid, model.start - 1) for uid in UIDS}
    differ = [uid for uid in UIDS if answers[uid] != expected[uid]]
    assert not differ, f"{len(differ)} users not on the configured weights, e.g. {differ[:5]}"
    assert {v: list(answers.values()).count(v) for v in ("v1", "v2", "v3")} == \
        {v: list(expected.values()).count(v) for v in ("v1", "v2", "v3")}
    assert gauge(envoy) == 10


def test_a_ramp_that_has_ended_serves_to_and_the_others_keep_their_proportions(envoy_with):
    require_wasm_module()
    # Ended an hour ago: v2 at 70 %; v1 and v3 share the other 30 % 2:1 as configured.
    model = RampModel((("v2", 10), ("v1", 60), ("v3", 30)), start=int(time.time()) - 7200,
                      duration_s=3600, to=70)
    envoy = envoy_with(model.config())
    assert model.ends(int(time.time())) == [7000, 9000, 10_000]
    answers = {uid: ask(envoy, uid) for uid in UIDS}
    differ = [uid for uid in UIDS if answers[uid] != model.version(uid, int(time.time()))]
    assert not differ, f"{len(differ)} users not on the ended ramp's weights, e.g. {differ[:5]}"
    counts = {v: list(answers.values()).count(v) for v in ("v1", "v2", "v3")}
    assert counts["v2"] > counts["v1"] > counts["v3"] > 0, counts
    assert gauge(envoy) == 70


def test_a_reload_mid_ramp_with_a_higher_to_moves_nobody_back(tmp_path):
    require_wasm_module()
    start = int(time.time()) + 3
    first = RampModel((("v2", 10), ("v1", 90)), start=start, duration_s=RAMP_S, to=40)
    second = RampModel((("v2", 10), ("v1", 90)), start=start, duration_s=RAMP_S, to=100)
    # Each configuration names itself in the response, so every answer says which decided.
    generations = {"x-ramp-to-40": first, "x-ramp-to-100": second}
    envoy = EcdsEnvoy(first.config(response_header="x-ramp-to-40"), work_dir=tmp_path).start()
    try:
        budget = TimeBudget(40, "the reload mid-ramp")
        on_canary: dict[str, bool] = {}
        seen, mismatches, moved_back, reloaded_at = [], [], [], None
        uid_index = 0
        while time.time() < start + 13 and uid_index < 100_000:
            budget.check()
            if reloaded_at is None and time.time() >= start + 7:
                reloaded_at = time.time()
                envoy.deliver(second.config(response_header="x-ramp-to-100"))
            uid = UIDS[uid_index % USERS]
            uid_index += 1
            sent = time.time()
            reply = envoy.request("/", headers={"cookie": f"uid={uid}"})
            answered = time.time()
            answer = answered_by(reply)
            names = [h for h in generations if h in reply.headers]
            assert len(names) == 1, f"no generation header: {dict(reply.headers)}"
            model = generations[names[0]]
            seen.append((sent, names[0]))
            if answer not in model.versions_between(uid, sent, answered):
                mismatches.append((uid, names[0], answer, rfc3339(int(sent))))
            if on_canary.get(uid) and answer != "v2":
                moved_back.append((uid, names[0], answer, rfc3339(int(sent))))
            on_canary[uid] = on_canary.get(uid, False) or answer == "v2"
        assert not mismatches, f"{len(mismatches)} answers off their configuration's ramp: {mismatches[:5]}"
        assert not moved_back, f"{len(moved_back)} users left v2 across the reload: {moved_back[:5]}"
        # The reload took effect: after it, answers come from the new configuration only.
        after = [name for sent, name in seen if sent > reloaded_at + 1]
        assert after and set(after) == {"x-ramp-to-100"}, "the new `to` never took effect"
        assert any(name == "x-ramp-to-40" for sent, name in seen if sent < reloaded_at)
        now = int(time.time())
        assert second.first_buckets(now) > first.first_buckets(now)
        assert gauge(envoy) in {second.first_buckets(t) // 100 for t in range(now - TICK_LAG_S, now + 1)}
    finally:
        envoy.stop()
