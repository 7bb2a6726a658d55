"""The configurations the Rust tests and benchmarks use too (fixtures/ at the repository
root), read from the same files so that each is written once."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SPEC_EXAMPLE = FIXTURES / "configs" / "spec-example.json"


def spec_example() -> dict:
    """The example configuration of SPEC §2, a fresh copy each call (callers may change it)."""
    return json.loads(SPEC_EXAMPLE.read_text())
