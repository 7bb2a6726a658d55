"""SPEC §10: signed sticky ids, under the real Envoy.

The keys reach the Wasm VM through `vm_config.environment_variables`: as Envoy's own
environment variable passed in by name (`host_env_keys`, what Istio's WasmPlugin
`vmConfig.env` with `valueFrom: HOST` writes), or as a value (`key_values`). Rotation is a
restart with another key list, as a gateway pod gets when its Secret changes.

Every test checks what a client sees (the version that answered, the Set-Cookie) against
an oracle written here, independently of the filter: Python's `hmac` for the MAC, and the
SPEC §3 hash (canary_e2e.spec_hash) of the ID for the version.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

import pytest

from canary_e2e.assertions import TimeBudget, answered_by, describe, upstream_saw
from canary_e2e.envoy_process import EnvoyUnderTest, require_wasm_module
from canary_e2e.spec_hash import split_version

KEYS_ENV = "CANARY_TAGGER_STICKY_KEYS"
RULE = "signed-canary"  # the hash salt
WEIGHTS = [{"version": "v2", "percent": 10}, {"version": "v1", "percent": 90}]
CONFIG = {
    "versions": ["v1", "v2"],
    "default_version": "v1",
    "rules": [{"name": RULE, "split": {"weights": WEIGHTS}}],
    "sticky_cookie": {"name": "canary-uid", "max_age_s": 3600,
                      "signing": {"keys_env": KEYS_ENV}},
}
OLD_KEY = b"old-key-for-canary-uid-32-bytes!"
NEW_KEY = b"new-key-for-canary-uid-32-bytes!"
OTHER_KEY = b"someone-elses-key-of-32-bytes!!!"


def env_value(*keys: tuple[str, bytes]) -> str:
    return ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in keys)


OLD_ONLY = env_value(("old", OLD_KEY))
ROTATED = env_value(("new", NEW_KEY), ("old", OLD_KEY))
NEW_ONLY = env_value(("new", NEW_KEY))

SET_COOKIE = re.compile(
    r"canary-uid=([0-9a-f]{32})\.([A-Za-z0-9_-]{1,16})\.([0-9a-f]{32}); Path=/; Max-Age=3600; "
    r"HttpOnly; SameSite=Lax")
REJECTED = "canary_tagger_sticky_id_rejected_total"


def mac(key: bytes, sticky_id: str) -> str:
    """SPEC §10: the lower-case hex of the first 16 bytes of HMAC-SHA256(key, ID)."""
    return hmac.new(key, sticky_id.encode(), hashlib.sha256).digest()[:16].hex()


def cookie(sticky_id: str, kid: str, key: bytes) -> str:
    return f"{sticky_id}.{kid}.{mac(key, sticky_id)}"


def version_of(sticky_id: str) -> str:
    return split_version(WEIGHTS, RULE, sticky_id)


def ids_landing_on(version: str, count: int) -> list[str]:
    """Random ids whose SPEC §3 bucket is in `version`'s range."""
    found = []
    while len(found) < count:
        candidate = secrets.token_hex(16)
        if version_of(candidate) == version:
            found.append(candidate)
    return found


def counter(envoy: EnvoyUnderTest, name: str) -> int:
    text = envoy.admin_get(f"/stats?filter={name}")
    match = re.search(rf"^wasmcustom\.{name}: (\d+)$", text, re.MULTILINE)
    assert match, f"{name} is not in /stats:\n{text}"
    return int(match.group(1))


def visit(envoy: EnvoyUnderTest, value: str | None = None):
    """One request with the sticky cookie `value` (or none): (version, issued Set-Cookie match)."""
    headers = {"cookie": f"canary-uid={value}"} if value is not None else {}
    reply = envoy.request("/", headers=headers)
    version = answered_by(reply)
    assert upstream_saw(reply, "x-canary-version") == [version]
    cookies = reply.headers.get_list("set-cookie")
    assert len(cookies) <= 1, describe(reply)
    issued = None
    if cookies:
        issued = SET_COOKIE.fullmatch(cookies[0])
        assert issued, f"unexpected Set-Cookie {cookies[0]!r}"
    return version, issued


def fresh_user(envoy: EnvoyUnderTest, key: bytes, kid: str) -> tuple[str, str]:
    """A first visit without a cookie: the issued cookie value and the version it got."""
    version, issued = visit(envoy)
    assert issued, "no sticky cookie issued to a user without one"
    sticky_id, issued_kid, issued_mac = issued.groups()
    assert issued_kid == kid
    assert issued_mac == mac(key, sticky_id), "the MAC is not HMAC-SHA256(key, ID)[:16]"
    assert version == version_of(sticky_id), "the split did not hash the issued ID"
    return f"{sticky_id}.{issued_kid}.{issued_mac}", version


@pytest.fixture(scope="module")
def old_keys(envoy_with):
    # From Envoy's own environment by name: Istio's `valueFrom: HOST`.
    return envoy_with(CONFIG, host_env={KEYS_ENV: OLD_ONLY})


@pytest.fixture(scope="module")
def rotated_keys(envoy_with):
    return envoy_with(CONFIG, vm_env={KEYS_ENV: ROTATED})


@pytest.fixture(scope="module")
def new_keys(envoy_with):
    return envoy_with(CONFIG, vm_env={KEYS_ENV: NEW_ONLY})


def test_an_issued_cookie_verifies_and_keeps_its_user_on_one_version(old_keys):
    before = counter(old_keys, REJECTED)
    for _ in range(20):
        value, version = fresh_user(old_keys, OLD_KEY, "old")
        for _ in range(3):
            again, issued = visit(old_keys, value)
            assert (again, issued) == (version, None), f"{value}: moved or re-issued"
    assert counter(old_keys, REJECTED) == before


def test_a_cookie_computed_with_pythons_hmac_is_accepted(old_keys):
    """Cross-language vector: the filter's HMAC and Python's agree, and the user lands where
    the hash of ID says (ids chosen on both sides of the split)."""
    before = counter(old_keys, REJECTED)
    for version in ("v2", "v1"):
        for sticky_id in ids_landing_on(version, 10):
            assert visit(old_keys, cookie(sticky_id, "old", OLD_KEY)) == (version, None), sticky_id
    assert counter(old_keys, REJECTED) == before


def bad_values() -> dict[str, str]:
    good_id = ids_landing_on("v2", 1)[0]
    good = cookie(good_id, "old", OLD_KEY)
    other_id = ids_landing_on("v2", 1)[0]
    return {
        "forged id": f"{other_id}.old.{mac(OLD_KEY, good_id)}",
        "forged mac": f"{good_id}.old.{secrets.token_hex(16)}",
        "truncated": good[:-1],
        "id only and a dot": good[:33],
        "re-keyed": cookie(good_id, "old", OTHER_KEY),
        "unknown key id": cookie(good_id, "other", OTHER_KEY),
        "unsigned": good_id,
        "upper-case": good.upper().replace(".OLD.", ".old."),
        "garbage": "tester",
        "extra part": good + ".x",
    }


@pytest.mark.parametrize("kind", list(bad_values()))
def test_a_value_that_does_not_verify_is_replaced_and_counted(old_keys, kind):
    value = bad_values()[kind]
    before = counter(old_keys, REJECTED)
    version, issued = visit(old_keys, value)
    assert issued, f"{kind}: no fresh id issued"
    sticky_id, kid, issued_mac = issued.groups()
    assert not value.startswith(sticky_id), f"{kind}: the sent id was kept"
    assert (kid, issued_mac) == ("old", mac(OLD_KEY, sticky_id))
    assert version == version_of(sticky_id), f"{kind}: the split did not use the fresh id"
    assert counter(old_keys, REJECTED) == before + 1
    # The fresh cookie then verifies.
    assert visit(old_keys, issued.group(0).split(";")[0].split("=", 1)[1]) == (version, None)


def test_rotation_keeps_old_cookies_and_dropping_the_old_key_replaces_them(
        old_keys, rotated_keys, new_keys):
    # The log says which key signs (key ids only, never keys).
    for envoy, kid, count in [(old_keys, "old", 1), (rotated_keys, "new", 2), (new_keys, "new", 1)]:
        log = envoy.log_text()
        assert f'sticky ids signed with key "{kid}" of {count} (from {KEYS_ENV})' in log, envoy.state()
        for key in (OLD_KEY, NEW_KEY):
            assert base64.b64encode(key).decode() not in log

    users = [fresh_user(old_keys, OLD_KEY, "old") for _ in range(20)]
    users += [(cookie(i, "old", OLD_KEY), "v2") for i in ids_landing_on("v2", 5)]

    # New key first, old key second: old cookies still verify and nobody moves.
    before = counter(rotated_keys, REJECTED)
    for value, version in users:
        assert visit(rotated_keys, value) == (version, None), f"{value} moved after rotating"
    assert counter(rotated_keys, REJECTED) == before
    # New users are signed with the new key.
    new_users = [fresh_user(rotated_keys, NEW_KEY, "new") for _ in range(5)]

    # Old key dropped: old cookies are replaced by fresh ids signed with the new key...
    before = counter(new_keys, REJECTED)
    for value, _ in users:
        version, issued = visit(new_keys, value)
        assert issued and issued.group(2) == "new", f"{value} was not replaced"
        assert version == version_of(issued.group(1))
    assert counter(new_keys, REJECTED) == before + len(users)
    # ...and cookies of the new key keep their users where they were.
    for value, version in new_users:
        assert visit(new_keys, value) == (version, None)


ATTEMPTS = 1000
# A minted id is rejected and the user gets a fresh random id: it lands in the canary (10 %)
# with probability 0.1. Binomial(1000, 0.1) has mean 100, standard deviation 9.5; 150 is
# 5.3 standard deviations above (P < 1e-7), while unsigned ids chosen like these would all
# (1000 of 1000) land in the canary.
CHANCE_BOUND = 150


def test_ids_minted_without_the_key_land_in_the_canary_no_more_often_than_chance(old_keys):
    minted = ids_landing_on("v2", ATTEMPTS)
    assert all(version_of(i) == "v2" for i in minted)
    before = counter(old_keys, REJECTED)
    budget = TimeBudget(180, f"{ATTEMPTS} minted ids")
    in_canary = 0
    for sticky_id in minted:
        budget.check()
        # The client's best guess at a signed value: the right shape and key id, any MAC.
        version, issued = visit(old_keys, f"{sticky_id}.old.{secrets.token_hex(16)}")
        assert issued and issued.group(1) != sticky_id
        in_canary += version == "v2"
    assert counter(old_keys, REJECTED) == before + ATTEMPTS
    assert in_canary <= CHANCE_BOUND, f"{in_canary} of {ATTEMPTS} minted ids reached the canary"


@pytest.mark.parametrize("vm_env,reason", [
    ({}, f"sticky_cookie.signing.keys_env: environment variable {KEYS_ENV} is not set in the Wasm VM"),
    ({KEYS_ENV: "old:" + base64.b64encode(b"too-short").decode()},
     f"sticky_cookie.signing.keys_env: environment variable {KEYS_ENV}: key \"old\" is 9 bytes, "
     "at least 16 are required"),
    ({KEYS_ENV: base64.b64encode(OLD_KEY).decode()},
     f"sticky_cookie.signing.keys_env: environment variable {KEYS_ENV}: entry 1 is not KID:BASE64"),
], ids=["missing", "short-key", "no-key-id"])
def test_missing_or_malformed_keys_reject_the_configuration(tmp_path, vm_env, reason):
    require_wasm_module()
    envoy = EnvoyUnderTest(CONFIG, work_dir=tmp_path, vm_env=vm_env)
    try:
        outcome = envoy.start_expecting_failure(validate=True)
    finally:
        envoy.stop()
    said = f"Envoy ({outcome.stage}, code {outcome.returncode}) said:\n{outcome.output}"
    assert outcome.stage == "rejected by validation", said
    lines = [line for line in outcome.output.splitlines() if reason in line]
    assert len(lines) == 1 and "[error][wasm]" in lines[0], said
    for value in vm_env.values():
        assert value.split(":")[-1] not in outcome.output, "key material in Envoy's log"
