"""The built `canary-tagger` binary, for the tests that run it against a real Envoy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def cli_binary() -> Path:
    """$CANARY_TAGGER_BIN, else the newer of target/release/canary-tagger and
    target/debug/canary-tagger (`make e2e` builds it first)."""
    from_env = os.environ.get("CANARY_TAGGER_BIN")
    if from_env:
        return Path(from_env)
    built = [p for p in (REPO_ROOT / "target" / "release" / "canary-tagger",
                         REPO_ROOT / "target" / "debug" / "canary-tagger") if p.is_file()]
    if not built:
        pytest.fail("the canary-tagger binary is not built: run `cargo build --bin canary-tagger` "
                    "(`make e2e` does) or set CANARY_TAGGER_BIN")
    return max(built, key=lambda p: p.stat().st_mtime)
