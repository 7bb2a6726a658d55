"""Issue 5: a changed pluginConfig reaches a running gateway without interrupting traffic.

Envoy gets canary-tagger through extension config discovery, as Istio delivers a
WasmPlugin (canary_e2e/ecds.py); every change is an atomic rename of a new resource file.

test_config_changes_under_load
    Two clients (HTTP/1.1 keep-alive and HTTP/2 h2c) send a steady, bounded stream for
    more than 30 s while 100 configurations are delivered, 20 of them invalid. Every
    configuration is a *generation* that names itself in the response header
    (`response_header: x-config-gen-<n>`) and sends the probe request to a different
    version than the generation before it, so each response says which configuration
    decided it and whether the routing followed. Asserted: no failed request and no 5xx;
    every response routed exactly as the generation it names prescribes; no client ever
    sees an older generation after a newer one; each valid change is seen by both
    clients within 1 s of the rename; each invalid change raises Envoy's config_fail by
    one, logs our one line with the JSON path, and the previous generation keeps
    deciding until the next valid change.

test_progressive_delivery_by_reload_only (S7)
    The canary grows 10 → 25 → 50 → 100 % by reloads only, while 300 users (cookie uid)
    keep coming back over both protocols: no user once answered by v2 is ever answered
    by v1 afterwards, each step's share is the percent, and each answer is the one
    SPEC §3 predicts.

Both tests print a summary line (requests, failures, reloads, slowest time-to-effect).
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from typing import Callable, NamedTuple

import pytest

from canary_e2e.ecds import ECDS_STATS_PREFIX, REJECTION_LOG_MARKER, EcdsEnvoy
from canary_e2e.envoy_process import require_wasm_module
from canary_e2e.spec_hash import split_version

VERSIONS = ["v1", "v2", "v3"]
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
GEN_HEADER = re.compile(r"^x-config-gen-(\d+)$")
SPLIT_RULE = "ramp"

# -- the schedule
CHANGES = 100
# Positions (0-based) of the invalid changes: 20, one pair back to back, the last change too.
INVALID_AT = frozenset({2, 7, 8, 13, 19, 24, 30, 35, 41, 46, 52, 57, 63, 68, 74, 79, 85, 90, 95, 99})
CHANGE_INTERVAL_S = 0.33          # 100 changes over 33 s
MAX_TIME_TO_EFFECT_S = 1.0        # the bound for a valid change
REJECTION_TIMEOUT_S = 2.0         # how long to wait for config_fail to move
INVALID_SETTLE_TIMEOUT_S = 5.0    # bound on waiting for answers after an invalid change
MIN_LOAD_S = 30.0
# -- the load (2 cores: Envoy, the echo upstreams and these clients share them)
REQUESTS_PER_S_PER_CLIENT = 100
LOAD_HARD_CAP_S = 60.0
MAX_REQUESTS_PER_CLIENT = int(REQUESTS_PER_S_PER_CLIENT * LOAD_HARD_CAP_S)
LOAD_USERS = 40                   # uids cycled through the split rule under load
# -- S7
RAMP_STEPS = [10, 25, 50, 100]
RAMP_USERS = 300
SHARE_TOLERANCE_POINTS = 5
RAMP_STEP_TIMEOUT_S = 20.0


# ---------------------------------------------------------------- configurations

def ramp_weights(canary_percent: float) -> list[dict]:
    weights = [{"version": "v2", "percent": canary_percent}]
    if canary_percent < 100:
        weights.append({"version": "v1", "percent": 100 - canary_percent})
    return weights


def generation_config(gen: int, probe_version: str, canary_percent: float) -> dict:
    """One generation: names itself in the response, routes the probe to `probe_version`,
    splits uid users `canary_percent` % onto v2."""
    return {
        "versions": VERSIONS,
        "default_version": "v1",
        "response_header": f"x-config-gen-{gen}",
        "rules": [
            {"name": "probe", "match": {"header": "x-probe", "exact": "1"}, "version": probe_version},
            {"name": "chrome", "match": {"header": "user-agent", "regex": ".*Chrome.*"}, "version": "v2"},
            {"name": SPLIT_RULE, "match": {"cookie": "uid", "present": True},
             "split": {"weights": ramp_weights(canary_percent), "key": ["cookie:uid"]}},
        ],
    }


class Generation(NamedTuple):
    gen: int
    probe_version: str
    canary_percent: float

    def config(self) -> dict:
        return generation_config(self.gen, self.probe_version, self.canary_percent)

    def expected_version(self, kind: str, uid: str | None) -> str:
        if kind == "probe":
            return self.probe_version
        if kind == "chrome":
            return "v2"
        if kind == "user":
            return split_version(ramp_weights(self.canary_percent), SPLIT_RULE, uid)
        return "v1"


def _set(path: list, value) -> Callable[[dict], dict | str]:
    def mutate(config: dict) -> dict:
        target = config
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return config
    return mutate


def _add(**fields) -> Callable[[dict], dict]:
    def mutate(config: dict) -> dict:
        config.update(fields)
        return config
    return mutate


def _rename_field(rule: int, old: str, new: str) -> Callable[[dict], dict]:
    def mutate(config: dict) -> dict:
        config["rules"][rule][new] = config["rules"][rule].pop(old)
        return config
    return mutate


# (mutation of a valid generation config, what our log line must say after
#  "configuration rejected: "; a trailing "…" means "starts with").
INVALID_CHANGES: list[tuple[Callable[[dict], dict | str], str]] = [
    (_set(["rules", 2, "split", "weights"], [{"version": "v2", "percent": 40}, {"version": "v1", "percent": 50}]),
     "rules[2].split.weights: percents sum to 90, expected 100"),
    (_set(["rules", 0, "version"], "v9"), 'rules[0].version: unknown version "v9"; versions are v1, v2, v3'),
    (_set(["rules", 1, "name"], "probe"), 'rules[1].name: duplicate rule name "probe"'),
    (_set(["rules", 1, "match", "regex"], "(Chrome"), "rules[1].match.regex: invalid regex: unclosed group"),
    (_add(trusted_tag_sources=["10.20.1.0/16"]),
     'trusted_tag_sources[0]: "10.20.1.0/16" has host bits set beyond its prefix length'),
    (_rename_field(0, "version", "versoin"), 'rules[0]: unknown field "versoin" (did you mean "version"?)'),
    (_add(schema=2), "schema: unsupported schema 2, expected 1"),
    (_set(["rules", 1, "name"], ""), "rules[1].name: must not be empty"),
    (lambda config: json.dumps(config)[:40], "$: invalid JSON: EOF while parsing…"),
    (_set(["default_version"], "v4"), 'default_version: unknown version "v4"; versions are v1, v2, v3'),
    (_set(["rules", 2, "split", "weights"], [{"version": "v9", "percent": 100}]),
     'rules[2].split.weights[0].version: unknown version "v9"; versions are v1, v2, v3'),
    (_set(["rules", 2, "split", "key"], ["ip"]),
     'rules[2].split.key[0]: "ip" is not one of cookie:NAME, header:NAME, query:NAME, source_ip'),
    (_set(["rules", 2, "split", "weights"], [{"version": "v2", "percent": 33.333}, {"version": "v1", "percent": 66.667}]),
     "rules[2].split.weights[0].percent: 33.333 has more than two decimals; "
     "rules[2].split.weights[1].percent: 66.667 has more than two decimals"),
    (_add(normalize=[{"header": "grpcsvc", "allowed": ["v1", "v2"], "default": "v9"}]),
     'normalize[0].default: "v9" is not one of allowed'),
    (_add(sticky_cookie={"name": "canary-uid", "max_age_s": 0}),
     "sticky_cookie.max_age_s: must be positive (0 would delete the cookie)"),
    (_set(["response_header"], "bad header"), 'response_header: "bad header" is not a valid header name'),
    (_add(client_ip={"from": "peer", "trusted_hops": 1}),
     'client_ip.trusted_hops: only applies when client_ip.from is "xff"'),
    (_set(["rules", 0, "match"], {"source_ip": ["2001:db8::/129"]}),
     'rules[0].match.source_ip[0]: "2001:db8::/129" has a prefix length outside 0..=128'),
    (_set(["versions"], ["v1", "v2", "v3", "v1"]), 'versions[3]: duplicate version "v1"'),
    (lambda config: "", "$: configuration is empty; `versions` and `default_version` are required"),
]
assert len(INVALID_CHANGES) == len(INVALID_AT)


def line_says(line: str, expected: str) -> bool:
    said = line.split(REJECTION_LOG_MARKER, 1)[-1].rstrip()
    if expected.endswith("…"):
        return said.startswith(expected[:-1])
    return said == expected


# ---------------------------------------------------------------- the clients

class Sample(NamedTuple):
    client: str          # "HTTP/1.1" or "HTTP/2"
    kind: str            # probe, chrome, plain, user
    uid: str | None
    sent: float          # time.monotonic()
    received: float
    status: int | None   # None: the request failed (connection error, timeout)
    version: str | None  # the upstream that answered
    gen: int | None      # the generation named in the response
    error: str | None


def generation_of(headers) -> int | None:
    gens = [int(m.group(1)) for name in headers.keys() if (m := GEN_HEADER.match(name.lower()))]
    return gens[0] if len(gens) == 1 else None


class Client(threading.Thread):
    """One protocol, one connection, a paced stream of requests, every answer recorded."""

    def __init__(self, envoy: EcdsEnvoy, http2: bool, requests: Callable[[int], tuple[str, str | None, dict]],
                 stop: threading.Event, rate: float = REQUESTS_PER_S_PER_CLIENT,
                 max_requests: int = MAX_REQUESTS_PER_CLIENT, hard_cap_s: float = LOAD_HARD_CAP_S):
        super().__init__(name=f"client-{'h2' if http2 else 'h1'}", daemon=True)
        self.envoy, self.http2, self.requests, self.stop = envoy, http2, requests, stop
        self.label = "HTTP/2" if http2 else "HTTP/1.1"
        self.interval = 1.0 / rate
        self.max_requests, self.hard_cap_s = max_requests, hard_cap_s
        self.samples: list[Sample] = []
        # gen -> when the first probe answer decided by that generation arrived.
        self.first_probe_seen: dict[int, float] = {}
        self.started = self.finished = 0.0
        envoy.client(http2)  # create the connection pool here, not racing in two threads

    def answered_since(self, since: float) -> bool:
        """Whether the newest answer is to a request sent at or after `since`."""
        return bool(self.samples) and self.samples[-1].sent >= since

    def run(self):
        self.started = time.monotonic()
        next_at = self.started
        for n in range(self.max_requests):
            if self.stop.is_set() or time.monotonic() - self.started > self.hard_cap_s:
                break
            kind, uid, headers = self.requests(n)
            sent = time.monotonic()
            try:
                reply = self.envoy.request("/", headers=headers, http2=self.http2)
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and asserted on
                self.samples.append(Sample(self.label, kind, uid, sent, time.monotonic(), None, None, None,
                                           f"{type(exc).__name__}: {exc}"))
            else:
                received = time.monotonic()
                gen = generation_of(reply.headers)
                version = reply.body.get("version")
                self.samples.append(Sample(self.label, kind, uid, sent, received, reply.status, version, gen,
                                           None if reply.status == 200 else json.dumps(reply.body)[:300]))
                if kind == "probe" and gen is not None and gen not in self.first_probe_seen:
                    self.first_probe_seen[gen] = received
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()
        self.finished = time.monotonic()


def load_mix(offset: int) -> Callable[[int], tuple[str, str | None, dict]]:
    """Every other request is the probe; the rest cycle through chrome, plain and uid users."""
    def request(n: int) -> tuple[str, str | None, dict]:
        if n % 2 == 0:
            return "probe", None, {"x-probe": "1", "user-agent": FIREFOX}
        k = n // 2
        kind = ("chrome", "plain", "user")[k % 3]
        if kind == "chrome":
            return kind, None, {"user-agent": CHROME}
        if kind == "plain":
            return kind, None, {"user-agent": FIREFOX}
        uid = f"load-user-{(k + offset) % LOAD_USERS}"
        return kind, uid, {"user-agent": FIREFOX, "cookie": f"theme=dark; uid={uid}"}
    return request


def failures_of(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if s.status is None or s.status != 200 or s.error]


def report(request, line: str, details: dict):
    """Print the summary even under -q, and keep the numbers beside the test's tmp files."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(f"\n{line}", flush=True)
    else:
        print(line)
    request.node.user_properties.append(("summary", json.dumps(details)))


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def ecds_envoy(tmp_path_factory):
    require_wasm_module()
    first = Generation(0, "v2", 50)
    envoy = EcdsEnvoy(first.config(), concurrency=2, work_dir=tmp_path_factory.mktemp("ecds-envoy"))
    envoy.start()
    envoy.initial_generation = first
    yield envoy
    envoy.stop()


# ---------------------------------------------------------------- the tests

def wait_for_the_initial_generation(clients, initial: Generation):
    deadline = time.monotonic() + 5.0
    while not all(initial.gen in c.first_probe_seen for c in clients):
        assert time.monotonic() < deadline, "the clients never saw the initial configuration"
        time.sleep(0.01)


def deliver_invalid_change(envoy, clients, candidate: Generation, previous: Generation, mutate,
                           expected_line: str, config_fail: int) -> dict:
    """Delivers `candidate` broken by `mutate` and waits for Envoy's config_fail to pass
    `config_fail`, then for each client to be answered after the rename. Returns the
    rejection: gen, renamed_at, rejected_after_s, previous_gen, expected_line."""
    renamed_at = envoy.deliver(mutate(candidate.config()))
    waited = envoy.wait_for_stat(f"{ECDS_STATS_PREFIX}config_fail", config_fail + 1, REJECTION_TIMEOUT_S)
    assert waited is not None, (
        f"change {candidate.gen} is invalid ({expected_line}) but config_fail did not rise within "
        f"{REJECTION_TIMEOUT_S}s; ECDS stats: {envoy.ecds_stats()}")
    # Check 5 needs answers decided between this change and the next: each client
    # gets one to a request sent after the rename before the next change goes out
    # (on a busy machine the rejection alone can outlast the interval).
    settle = time.monotonic() + INVALID_SETTLE_TIMEOUT_S
    while not all(c.answered_since(renamed_at) for c in clients) and time.monotonic() < settle:
        time.sleep(0.002)
    return {"gen": candidate.gen, "renamed_at": renamed_at, "rejected_after_s": waited,
            "previous_gen": previous.gen, "expected_line": expected_line}


def deliver_valid_change(envoy, clients, nxt: Generation) -> dict:
    """Delivers `nxt` and waits (bounded) until both clients saw it decide. Returns the
    change: gen, renamed_at, time_to_effect_s per client (None: not seen within the bound)."""
    gen = nxt.gen
    renamed_at = envoy.deliver(nxt.config())
    limit = renamed_at + MAX_TIME_TO_EFFECT_S
    while not all(gen in c.first_probe_seen for c in clients) and time.monotonic() < limit:
        time.sleep(0.002)
    effect = {c.label: (c.first_probe_seen[gen] - renamed_at if gen in c.first_probe_seen else None)
              for c in clients}
    if any(seconds is None for seconds in effect.values()):
        # Let it settle so later changes are measured on their own, then fail at the end.
        settle = time.monotonic() + 5.0
        while not all(gen in c.first_probe_seen for c in clients) and time.monotonic() < settle:
            time.sleep(0.01)
    return {"gen": gen, "renamed_at": renamed_at, "time_to_effect_s": effect}


def deliver_the_schedule(envoy, clients, initial: Generation, config_fail: int):
    """The CHANGES changes, CHANGE_INTERVAL_S apart, those at INVALID_AT invalid. Returns
    the valid generations by gen (the initial one too), the valid changes applied and the
    invalid ones rejected."""
    generations: dict[int, Generation] = {initial.gen: initial}
    applied: list[dict] = []    # valid changes: gen, renamed_at, time_to_effect per client
    rejected: list[dict] = []   # invalid changes: gen, renamed_at, seconds until config_fail moved
    latest = initial
    invalid_count = 0
    schedule_start = time.monotonic()
    for position in range(CHANGES):
        gen = position + 1
        pause = schedule_start + position * CHANGE_INTERVAL_S - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        probe_version = "v3" if latest.probe_version == "v2" else "v2"
        if position in INVALID_AT:
            mutate, expected_line = INVALID_CHANGES[invalid_count]
            invalid_count += 1
            candidate = Generation(gen, probe_version, latest.canary_percent)
            rejected.append(deliver_invalid_change(envoy, clients, candidate, latest, mutate, expected_line,
                                                   config_fail))
            config_fail += 1
            continue
        nxt = Generation(gen, probe_version, 1 + (gen * 37) % 99)
        generations[gen] = nxt
        applied.append(deliver_valid_change(envoy, clients, nxt))
        latest = nxt
    return generations, applied, rejected


def reload_summary(clients, samples: list[Sample], applied: list[dict], rejected: list[dict],
                   ecds_before: dict, ecds_after: dict) -> dict:
    # A change's time-to-effect is the later of the two clients (None: never seen in time).
    per_change = [max(float("inf") if v is None else v for v in a["time_to_effect_s"].values())
                  for a in applied]
    slowest = max(per_change)
    effects = [v for v in per_change if v != float("inf")]
    return {
        "requests": len(samples),
        "per_client": {c.label: len(c.samples) for c in clients},
        "failures": len(failures_of(samples)),
        "load_seconds": round(min(c.finished for c in clients) - max(c.started for c in clients), 1),
        "reloads_applied": len(applied),
        "reloads_rejected": len(rejected),
        "slowest_time_to_effect_s": round(slowest, 3),
        "median_time_to_effect_s": round(statistics.median(effects), 3) if effects else None,
        "slowest_rejection_s": round(max(r["rejected_after_s"] for r in rejected), 3),
        "ecds": {k: ecds_after[k] - ecds_before[k] for k in
                 ("update_success", "update_rejected", "config_fail", "config_reload")},
    }


def summary_line(summary: dict) -> str:
    return (
        f"reload under load: {summary['requests']} requests "
        f"({', '.join(f'{k} {v}' for k, v in summary['per_client'].items())}) in {summary['load_seconds']} s, "
        f"{summary['failures']} failed; {summary['reloads_applied']} reloads applied, "
        f"{summary['reloads_rejected']} rejected; slowest time-to-effect {summary['slowest_time_to_effect_s']} s "
        f"(median {summary['median_time_to_effect_s']} s); slowest rejection {summary['slowest_rejection_s']} s")


def assert_each_rejection_kept_the_previous_generation(envoy, samples: list[Sample], applied: list[dict],
                                                       rejected: list[dict]):
    """Check 5, after the counts: our error line per rejection, with its JSON path, and
    only the previous generation deciding between the invalid change and the next one."""
    lines = envoy.rejection_log_lines(at_least=len(rejected))
    assert len(lines) == len(rejected), f"expected {len(rejected)} rejection lines, got:\n" + "\n".join(lines)
    for line, change in zip(lines, rejected):
        assert line_says(line, change["expected_line"]), (
            f"change {change['gen']}: expected {change['expected_line']!r} in\n{line}")
        assert "[error]" in line, f"not logged at error level: {line}"
    renames = sorted([a["renamed_at"] for a in applied] + [r["renamed_at"] for r in rejected])
    for change in rejected:
        later = [t for t in renames if t > change["renamed_at"]]
        window_end = later[0] if later else float("inf")
        # Requests sent after the invalid rename and answered before the next one were decided
        # in between. (One sent before the next rename may be decided after it: a request is
        # decided when the worker reads its headers, not when the client starts sending.)
        in_window = [s for s in samples if change["renamed_at"] <= s.sent and s.received < window_end]
        assert in_window, f"no traffic between invalid change {change['gen']} and the next change"
        moved = [s for s in in_window if s.gen != change["previous_gen"]]
        assert not moved, (f"after invalid change {change['gen']} answers came from other generations than "
                           f"{change['previous_gen']}: {moved[:3]}")


def test_config_changes_under_load(ecds_envoy, request):
    envoy = ecds_envoy
    initial: Generation = envoy.initial_generation
    ecds_before = envoy.ecds_stats()
    vms_before = envoy.stats("wasm.envoy.wasm.runtime.v8.active")

    stop = threading.Event()
    clients = [Client(envoy, http2=False, requests=load_mix(0), stop=stop),
               Client(envoy, http2=True, requests=load_mix(LOAD_USERS // 2), stop=stop)]
    for client in clients:
        client.start()
    try:
        wait_for_the_initial_generation(clients, initial)
        generations, applied, rejected = deliver_the_schedule(envoy, clients, initial,
                                                              ecds_before["config_fail"])
        # Keep the load going a little after the last change (it is invalid: nothing may move).
        time.sleep(max(0.5, MIN_LOAD_S - (time.monotonic() - clients[0].started) + 0.2))
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=LOAD_HARD_CAP_S + 10)

    samples = [s for c in clients for s in c.samples]
    summary = reload_summary(clients, samples, applied, rejected, ecds_before, envoy.ecds_stats())
    report(request, summary_line(summary), summary)

    # 1. Nothing failed, on either protocol, for the whole run.
    failed = failures_of(samples)
    assert not failed, f"{len(failed)} of {len(samples)} requests failed, e.g. {failed[:3]}"
    assert {s.client for s in samples} == {"HTTP/1.1", "HTTP/2"}
    assert summary["load_seconds"] >= MIN_LOAD_S, f"the load ran only {summary['load_seconds']} s"

    # 2. Every answer was routed exactly as the generation it names prescribes, and only
    #    valid generations ever decided.
    misrouted = [s for s in samples
                 if s.gen not in generations or s.version != generations[s.gen].expected_version(s.kind, s.uid)]
    assert not misrouted, f"{len(misrouted)} answers do not match their generation, e.g. {misrouted[:3]}"

    # 3. A client never goes back to an older configuration.
    for client in clients:
        went_back = [(a, b) for a, b in zip(client.samples, client.samples[1:]) if b.gen < a.gen]
        assert not went_back, f"{client.label} saw an older generation after a newer one: {went_back[:2]}"

    # 4. Each valid change reached both clients within the bound.
    slow = [a for a in applied if any(v is None or v >= MAX_TIME_TO_EFFECT_S for v in a["time_to_effect_s"].values())]
    assert not slow, f"{len(slow)} valid changes took {MAX_TIME_TO_EFFECT_S}s or more: {slow[:5]}"
    assert len(applied) == CHANGES - len(INVALID_AT)

    # 5. Each invalid change was rejected by Envoy, logged by us with its JSON path, and the
    #    previous generation kept deciding until the next change.
    assert len(rejected) == len(INVALID_AT)
    assert summary["ecds"]["config_fail"] == len(INVALID_AT)
    assert summary["ecds"]["update_rejected"] == len(INVALID_AT)
    assert summary["ecds"]["update_success"] == len(applied)
    assert_each_rejection_kept_the_previous_generation(envoy, samples, applied, rejected)

    # 6. The VM was reused: no Wasm VM piled up across 100 updates, none was reloaded.
    assert envoy.stats("wasm.envoy.wasm.runtime.v8.active") == vms_before
    assert envoy.stats("wasm.canary-tagger.vm_reload").get("wasm.canary-tagger.vm_reload", 0) == 0


def ramp_mix(offset: int) -> Callable[[int], tuple[str, str | None, dict]]:
    def request(n: int) -> tuple[str, str | None, dict]:
        uid = f"user-{(n + offset) % RAMP_USERS}"
        return "user", uid, {"user-agent": FIREFOX, "cookie": f"uid={uid}"}
    return request


def deliver_ramp_step(envoy, clients, step: Generation) -> float:
    """Delivers `step` and waits until it is in force and has seen every user; returns its
    time to effect (until both clients were answered from it)."""
    gen = step.gen
    renamed_at = envoy.deliver(step.config())
    deadline = renamed_at + RAMP_STEP_TIMEOUT_S
    # The step is in force once both clients answer from it ...
    while time.monotonic() < deadline:
        firsts = [next((s.received for s in c.samples if s.gen == gen), None) for c in clients]
        if all(firsts):
            break
        time.sleep(0.02)
    assert all(firsts), f"the {step.canary_percent}% step never reached both clients"
    # ... and it has seen every user on both protocols.
    while time.monotonic() < deadline:
        seen = [{s.uid for s in c.samples if s.gen == gen} for c in clients]
        if all(len(users) == RAMP_USERS for users in seen):
            break
        time.sleep(0.05)
    assert all(len(users) == RAMP_USERS for users in seen), (
        f"{step.canary_percent}% step: not every user was asked within {RAMP_STEP_TIMEOUT_S}s")
    return max(firsts) - renamed_at


def moved_back_from_v2(samples: list[Sample]) -> list[Sample]:
    """The answers (in order sent) not from v2 to a user already answered by v2 before the
    request was sent."""
    on_v2_since: dict[str, float] = {}
    moved_back = []
    for s in samples:
        since = on_v2_since.get(s.uid)
        if since is not None and s.sent > since and s.version != "v2":
            moved_back.append(s)
        if s.version == "v2" and (since is None or s.received < since):
            on_v2_since[s.uid] = s.received
    return moved_back


def test_progressive_delivery_by_reload_only(ecds_envoy, request):
    """S7 by reloads: v2 at 10 → 25 → 50 → 100 % for 300 users, nobody moves back to v1."""
    envoy = ecds_envoy
    base_gen = 1000  # distinct from the generations of the other test
    steps = {base_gen + i: Generation(base_gen + i, "v2", percent) for i, percent in enumerate(RAMP_STEPS)}
    applied_before = envoy.ecds_stats()["update_success"]

    stop = threading.Event()
    clients = [Client(envoy, http2=False, requests=ramp_mix(0), stop=stop, rate=150),
               Client(envoy, http2=True, requests=ramp_mix(RAMP_USERS // 2), stop=stop, rate=150)]
    for client in clients:
        client.start()
    effect_times: dict[int, float] = {}
    try:
        for gen, step in steps.items():
            effect_times[gen] = deliver_ramp_step(envoy, clients, step)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=LOAD_HARD_CAP_S + 10)

    samples = sorted((s for c in clients for s in c.samples), key=lambda s: s.sent)
    # Answers decided by the configuration left by the previous test are not part of the ramp.
    ours = [s for s in samples if s.gen in steps]
    report(request, (
        f"S7 by reload: {len(samples)} requests from {RAMP_USERS} users over HTTP/1.1 and HTTP/2, "
        f"{len(failures_of(samples))} failed; steps {RAMP_STEPS} applied in "
        f"{', '.join(f'{t:.3f}' for t in effect_times.values())} s"),
        {"requests": len(samples), "failures": len(failures_of(samples)),
         "time_to_effect_s": list(effect_times.values())})

    failed = failures_of(samples)
    assert not failed, f"{len(failed)} requests failed, e.g. {failed[:3]}"
    assert envoy.ecds_stats()["update_success"] - applied_before == len(RAMP_STEPS)

    # Every answer is the one SPEC §3 gives this user at the step that decided it.
    wrong = [s for s in ours if s.version != steps[s.gen].expected_version("user", s.uid)]
    assert not wrong, f"{len(wrong)} answers differ from SPEC §3, e.g. {wrong[:3]}"

    # Nobody answered by v2 is answered by v1 by any later request (sent after that answer
    # arrived), on either protocol, including while a reload was being applied.
    moved_back = moved_back_from_v2(ours)
    assert not moved_back, f"{len(moved_back)} answers moved a v2 user back, e.g. {moved_back[:3]}"

    # The v2 share of each step is its percent.
    for gen, step in steps.items():
        final = {s.uid: s.version for s in ours if s.gen == gen}
        share = 100 * sum(1 for v in final.values() if v == "v2") / RAMP_USERS
        assert abs(share - step.canary_percent) <= SHARE_TOLERANCE_POINTS, (
            f"{share:.1f}% of users on v2 at the {step.canary_percent}% step")
    assert {s.version for s in ours if s.gen == base_gen + len(RAMP_STEPS) - 1} == {"v2"}
