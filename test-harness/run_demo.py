#!/usr/bin/env python3
"""`make run`: Envoy with canary-tagger in front of v1/v2/v3 echo upstreams, on localhost.

    .venv/bin/python test-harness/run_demo.py           # run until Ctrl-C, print curl examples
    .venv/bin/python test-harness/run_demo.py --check   # run every example, assert, exit

The module must already be built (`make run` builds dist/canary_tagger.wasm first). The
demo plugin config covers the seed scenarios: gRPC grpcsvc normalization (S1), Chrome → v2
(S2), cookie user=tester → v2 (S3), office IP 192.168.0.58 via X-Forwarded-For → v3 (S4),
Android users split 50/50 and sticky (S5), a spoofed tag ignored (S9), and the version
echoed in the x-canary-version response header.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from canary_e2e.envoy_process import EnvoyStartupError, EnvoyUnderTest  # noqa: E402
from canary_e2e.spec_hash import split_version  # noqa: E402

FRIENDLY_LISTENER_PORT = 10000
FRIENDLY_ADMIN_PORT = 9901
CURL_TIMEOUT_S = 15

ANDROID_RULE = "android-half"
ANDROID_WEIGHTS = [{"version": "v2", "percent": 50}, {"version": "v1", "percent": 50}]
DEMO_CONFIG = {
    "schema": 1,
    "tag_header": "x-canary-version",
    "versions": ["v1", "v2", "v3"],
    "default_version": "v1",
    # The demo client talks to Envoy directly; a real gateway sits behind one load balancer
    # that appends the client address to X-Forwarded-For, so trust one hop.
    "client_ip": {"from": "xff", "trusted_hops": 1},
    "normalize": [
        {"header": "grpcsvc", "allowed": ["v1", "v2", "v3", "v4"], "default": "v1",
         "when": {"header": "content-type", "prefix": "application/grpc"}},
    ],
    "rules": [
        {"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "version": "v2"},
        {"name": "office", "match": {"source_ip": ["192.168.0.58/32"]}, "version": "v3"},
        {"name": "chrome", "match": {"header": "user-agent", "regex": ".*Chrome.*"}, "version": "v2"},
        {"name": "pick", "match": {"header": "grpcsvc", "present": True}, "version_from": "header:grpcsvc"},
        {"name": ANDROID_RULE, "match": {"header": "user-agent", "contains": "Android"},
         "split": {"weights": ANDROID_WEIGHTS, "key": ["cookie:uid"]}},
    ],
    "sticky_cookie": {"name": "canary-uid", "max_age_s": 2592000},
    "response_header": "x-canary-version",
}

CHROME_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
ANDROID_UA = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile"
ANDROID_UID = "user-42"


@dataclass
class Example:
    title: str
    curl_args: list[str]          # after `curl -s`, before the URL
    path: str
    version: str                  # the version that must answer
    upstream_headers: dict = field(default_factory=dict)  # headers the upstream must have seen
    sets_sticky_cookie: bool = False

    def command(self, base_url: str) -> list[str]:
        return ["curl", "-s", *self.curl_args, f"{base_url}{self.path}"]


def examples() -> list[Example]:
    android_version = split_version(ANDROID_WEIGHTS, ANDROID_RULE, ANDROID_UID)
    return [
        Example("everyone else -> v1", [], "/", "v1", {"x-canary-version": "v1"}),
        Example("Chrome -> v2 (S2)", ["-A", CHROME_UA], "/", "v2", {"x-canary-version": "v2"}),
        Example("cookie user=tester anywhere -> v2 (S3)", ["-b", "lang=en; user=tester; theme=dark"], "/",
                "v2", {"x-canary-version": "v2"}),
        Example("office IP 192.168.0.58 appended by the load balancer -> v3 (S4)",
                ["-H", "X-Forwarded-For: 192.168.0.58"], "/", "v3", {"x-canary-version": "v3"}),
        Example("...but prepending it yourself does not work -> v1 (S4)",
                ["-H", "X-Forwarded-For: 192.168.0.58, 203.0.113.9"], "/", "v1"),
        Example("a client-sent tag is ignored -> v1 (S9)", ["-H", "x-canary-version: v3"], "/", "v1",
                {"x-canary-version": "v1"}),
        Example("gRPC without grpcsvc is normalized to grpcsvc: v1 (S1)",
                ["--http2-prior-knowledge", "-X", "POST", "-H", "content-type: application/grpc"],
                "/weather.Forecast/Get", "v1", {"grpcsvc": "v1"}),
        Example("gRPC with grpcsvc: v3 is routed to v3 (S1, HTTP/2)",
                ["--http2-prior-knowledge", "-X", "POST", "-H", "content-type: application/grpc",
                 "-H", "grpcsvc: v3"], "/weather.Forecast/Get", "v3", {"grpcsvc": "v3"}),
        Example(f"Android user {ANDROID_UID} -> {android_version} on every request "
                "(S5: half of the Android users get v2, each always the same version)",
                ["-A", ANDROID_UA, "-b", f"uid={ANDROID_UID}"], "/", android_version),
        Example("anonymous Android user: gets a canary-uid cookie to stay on its version (S5)",
                ["-i", "-A", ANDROID_UA], "/", "", sets_sticky_cookie=True),
    ]


def run_example(example: Example, base_url: str) -> str | None:
    """Run the printed curl command; None if it behaved as promised, else what went wrong."""
    try:
        proc = subprocess.run(example.command(base_url), capture_output=True, text=True,
                              timeout=CURL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return f"curl did not finish within {CURL_TIMEOUT_S}s"
    if proc.returncode != 0:
        return f"curl exited {proc.returncode}: {proc.stderr.strip()}"
    head, body = "", proc.stdout
    if "-i" in example.curl_args:
        head, _, body = proc.stdout.replace("\r\n", "\n").partition("\n\n")
    try:
        answer = json.loads(body)
    except ValueError:
        return f"not a JSON answer: {proc.stdout[:300]!r}"
    if example.version and answer.get("version") != example.version:
        return f"expected {example.version}, answered by {answer.get('version')}"
    for name, value in example.upstream_headers.items():
        if answer.get("headers", {}).get(name) != value:
            return f"upstream saw {name}: {answer.get('headers', {}).get(name)!r}, expected {value!r}"
    if example.sets_sticky_cookie and "set-cookie: canary-uid=" not in head.lower():
        return f"no canary-uid Set-Cookie in the response headers:\n{head}"
    return None


def start_demo(ephemeral_ports: bool, work_dir: Path) -> EnvoyUnderTest:
    envoy = EnvoyUnderTest(
        DEMO_CONFIG, work_dir=work_dir,
        edge_port=None if ephemeral_ports else FRIENDLY_LISTENER_PORT,
        admin_port=None if ephemeral_ports else FRIENDLY_ADMIN_PORT)
    return envoy.start()


def print_banner(envoy: EnvoyUnderTest):
    base = envoy.url
    print(f"canary-tagger demo: Envoy listener {base}, admin {envoy.admin_url}")
    print("upstreams: " + ", ".join(f"{v} on 127.0.0.1:{u.port}" for v, u in envoy.upstreams.items()))
    print(f"Envoy log: {envoy.log_path}\n")
    for example in examples():
        print(f"# {example.title}")
        print(shlex.join(example.command(base)))
    print(f"\n# metrics\ncurl -s {envoy.admin_url}/stats/prometheus | grep -i canary")
    print("\nEach answer is the JSON of the upstream that served it: its version and the "
          "headers it received.\nCtrl-C stops Envoy and the upstreams.", flush=True)


def check(envoy: EnvoyUnderTest) -> int:
    failures = 0
    for example in examples():
        problem = run_example(example, envoy.url)
        status = "ok  " if problem is None else "FAIL"
        print(f"{status} {example.title}" + (f": {problem}" if problem else ""), flush=True)
        failures += problem is not None
    print(f"{len(examples()) - failures}/{len(examples())} demo examples behaved as printed")
    return 1 if failures else 0


def serve_until_stopped(envoy: EnvoyUnderTest) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        if envoy.process.poll() is not None:
            print(f"Envoy exited with code {envoy.process.returncode}; log:\n{envoy.log_text()[-3000:]}",
                  file=sys.stderr)
            return 1
    print("\nstopping Envoy and the upstreams", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="run every printed curl example, assert the versions, and exit")
    parser.add_argument("--ephemeral-ports", action="store_true",
                        help="always use OS-chosen ports (default with --check, so runs never collide)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="canary-demo-") as work_dir:
        try:
            envoy = start_demo(args.ephemeral_ports or args.check, Path(work_dir))
        except EnvoyStartupError as exc:
            print(f"could not start the demo: {exc}", file=sys.stderr)
            return 2
        try:
            print_banner(envoy)
            return check(envoy) if args.check else serve_until_stopped(envoy)
        finally:
            envoy.stop()


if __name__ == "__main__":
    sys.exit(main())
