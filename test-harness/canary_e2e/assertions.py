"""Assertions whose failure messages show what the upstream actually received."""

from __future__ import annotations

import json
import time

from .envoy_process import Reply
from .upstreams import header_values


def describe(reply: Reply) -> str:
    return f"status {reply.status} over {reply.http_version}; body:\n{json.dumps(reply.body, indent=1)}"


def answered_by(reply: Reply) -> str:
    assert reply.status == 200, f"expected an upstream answer, got {describe(reply)}"
    assert "version" in reply.body, f"not an upstream answer: {describe(reply)}"
    return reply.body["version"]


def assert_answered(reply: Reply, version: str):
    assert answered_by(reply) == version, f"expected {version} to answer; {describe(reply)}"


def upstream_saw(reply: Reply, header: str) -> list[str]:
    """Values of `header` as the upstream that answered received it."""
    answered_by(reply)
    return header_values(reply.body["headers"], header)


def baggage_members(values: list[str]) -> list[str]:
    """The members of `baggage` header values (several lines are one list), trimmed."""
    return [member.strip() for value in values for member in value.split(",") if member.strip()]


def wasm_counters(envoy) -> dict[str, int]:
    """canary-tagger's counters in Envoy's /stats, by name without `wasmcustom.`."""
    counters = {}
    for line in envoy.admin_get("/stats").splitlines():
        name, _, value = line.partition(": ")
        if name.startswith("wasmcustom.") and value.strip().isdigit():
            counters[name.removeprefix("wasmcustom.")] = int(value)
    return counters


class TimeBudget:
    """Bounds a long request loop in wall-clock time as well as in count."""

    def __init__(self, seconds: float, what: str):
        self.seconds = seconds
        self.what = what
        self.deadline = time.monotonic() + seconds

    def check(self):
        assert time.monotonic() < self.deadline, f"{self.what} took more than {self.seconds}s"
