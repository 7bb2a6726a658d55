"""`canary-tagger explain` names the version the real Envoy routes to.

The command-line tool runs the same engine as the wasm module, but it builds the request
from flags. For generated requests (user agents, cookies, x-forwarded-for chains, client-sent
tags, gRPC headers, query strings), each one goes through Envoy with the plugin, and the same
request goes through `canary-tagger explain --json`: the version that answered, the tag and
normalized headers the upstream received, and the response headers must be what explain
says. Anonymous users of a split get a random sticky id from Envoy; sending that id back
to explain (`--cookie canary-uid=...`) must name the version Envoy chose.

The binary is $CANARY_TAGGER_BIN, else the newer of target/release/canary-tagger and
target/debug/canary-tagger (`make e2e` builds it first).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
from pathlib import Path

import pytest

from canary_e2e.assertions import answered_by, describe, upstream_saw
from canary_e2e.cli import cli_binary
from canary_e2e.fixtures import SPEC_EXAMPLE

REPO_ROOT = Path(__file__).resolve().parents[1]
WEATHER = REPO_ROOT / "envoyfilter" / "weather" / "plugin-config.json"

SPEC_REQUESTS = 200
WEATHER_REQUESTS = 100
# The peer explain is told about; the rules of these configs never look at its port.
PEER = "127.0.0.1:40000"
STICKY = re.compile(r"canary-uid=([0-9a-f]{32}); Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax$")

AGENTS = [
    None,
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Version/17.2 Mobile Safari/604.1",
    "curl/8.5.0",
]
CLIENT_XFF = [None, None, "192.168.0.58", "203.0.113.50, 192.168.0.58", "192.168.0.58, 203.0.113.9",
              "10.20.7.7", "2001:db8::7", "198.51.100.23", "not-an-ip"]
PATHS = ["/", "/forecast", "/app?beta=0", "/app?beta=1&x=%20y", "/app?other=1"]


def explain(config_path: Path, request: dict, xff_seen: list[str], extra_cookies=()) -> dict:
    """`canary-tagger explain --json` for the request as the filter saw it."""
    args = [str(cli_binary()), "explain", str(config_path), "--json", "--ip", PEER,
            "--path", request["path"]]
    for name, value in request["headers"]:
        if name == "x-forwarded-for":
            continue  # Envoy appended to it: the filter sees `xff_seen`
        if name == "cookie":
            args += ["--cookie", value]
        else:
            args += ["--header", f"{name}: {value}"]
    for cookie in extra_cookies:
        args += ["--cookie", cookie]
    for value in xff_seen:  # x-forwarded-for after Envoy appended its hop
        args += ["--xff", value]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stderr}"
    return json.loads(done.stdout)


def generate(count: int, seed: int) -> list[dict]:
    """Requests a gateway sees, mixed so that every rule of the configs gets its turn."""
    rng = random.Random(seed)
    requests = []
    for n in range(count):
        headers: list[tuple[str, str]] = []
        agent = rng.choice(AGENTS)
        if agent:
            headers.append(("user-agent", agent))
        cookies = []
        if rng.random() < 0.2:
            cookies.append(f"user={rng.choice(['tester', 'alice', 'bob', f'u{n}'])}")
        if rng.random() < 0.5:
            cookies.append(f"uid=user-{rng.randrange(10_000)}")
        if rng.random() < 0.15:
            cookies.append(f"canary-uid={rng.getrandbits(128):032x}")
        if rng.random() < 0.2:
            cookies.append("theme=dark")
        rng.shuffle(cookies)
        if cookies:
            headers.append(("cookie", "; ".join(cookies)))
        xff = rng.choice(CLIENT_XFF)
        if xff:
            headers.append(("x-forwarded-for", xff))
        if rng.random() < 0.2:
            headers.append(("x-canary-version", rng.choice(["v1", "v2", "v3", "v9"])))
        if rng.random() < 0.25:
            headers.append(("content-type", rng.choice(["application/grpc", "application/grpc+proto",
                                                        "application/json"])))
        if rng.random() < 0.3:
            headers.append(("grpcsvc", rng.choice(["v1", "v2", "v3", "v4", "v7", ""])))
        if rng.random() < 0.2:
            headers.append(("x-user-id", f"id-{rng.randrange(1000)}"))
        if rng.random() < 0.15:
            headers.append(("baggage", rng.choice(["tenant=acme,canary-version=v9",
                                                   "canary-version=v2;p=1", "tenant=acme"])))
        requests.append({"path": rng.choice(PATHS), "headers": headers})
    return requests


def through_envoy(envoy, request: dict, http2: bool):
    reply = envoy.request(request["path"], headers=request["headers"], http2=http2)
    answered_by(reply)
    return reply


def check_agreement(explained: dict, reply, request: dict):
    where = f"request {request}\nexplain: {json.dumps(explained, indent=1)}\n{describe(reply)}"
    assert answered_by(reply) == explained["version"], where
    for header in explained["request_headers"]:
        assert upstream_saw(reply, header["name"]) == [header["value"]], where
    for name in explained["request_headers_removed"]:
        assert upstream_saw(reply, name) == [], where
    for header in explained["response_headers"]:
        if header["name"] == "set-cookie":
            continue  # random in Envoy; checked by the sticky round trip
        assert reply.headers.get_list(header["name"]) == [header["value"]], where
    issued = reply.headers.get_list("set-cookie")
    assert bool(issued) == (explained["sticky_id"] is not None), where


@pytest.mark.parametrize("config_path,count,seed", [
    pytest.param(SPEC_EXAMPLE, SPEC_REQUESTS, 11, id="spec-example"),
    pytest.param(WEATHER, WEATHER_REQUESTS, 12, id="weather"),
])
def test_explain_names_the_version_envoy_routes_to(envoy_with, http2, config_path, count, seed):
    config = json.loads(config_path.read_text())
    envoy = envoy_with(config)
    by_version: dict[str, int] = {}
    decided_by: set[str] = set()
    round_trips = 0
    for request in generate(count, seed):
        reply = through_envoy(envoy, request, http2)
        xff_seen = upstream_saw(reply, "x-forwarded-for")
        explained = explain(config_path, request, xff_seen)
        if explained["split"] and explained["split"]["key_kind"] == "new_sticky_id":
            # Envoy drew its own random id: explain must agree once it is told that id.
            (set_cookie,) = reply.headers.get_list("set-cookie")
            match = STICKY.match(set_cookie)
            assert match, set_cookie
            explained = explain(config_path, request, xff_seen, [f"canary-uid={match.group(1)}"])
            assert explained["split"]["key_kind"] == "sticky_cookie"
            assert answered_by(reply) == explained["version"], (request, explained, describe(reply))
            round_trips += 1
            continue
        check_agreement(explained, reply, request)
        by_version[explained["version"]] = by_version.get(explained["version"], 0) + 1
        decided = explained["decided_by"]
        decided_by.add(decided.get("name", decided["kind"]))

    # The generated mix reaches every version and most ways of deciding, or it proves little.
    assert set(by_version) == set(config["versions"]), by_version
    if config_path == SPEC_EXAMPLE:
        assert {"testers", "office", "chrome", "pick", "android", "default",
                "trusted_client_tag"} <= decided_by, decided_by
    else:
        assert {"testers", "android-half", "chrome", "ramp"} <= decided_by, decided_by
        assert round_trips > 0, "no anonymous user reached the ramp split"
