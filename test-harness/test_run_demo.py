"""`make run` keeps working: every curl example the demo prints behaves as printed, and the
demo stops Envoy and its upstreams on Ctrl-C / SIGTERM."""

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from canary_e2e.envoy_process import require_wasm_module

DEMO = Path(__file__).resolve().parent / "run_demo.py"
DEMO_TIMEOUT_S = 120
STOP_TIMEOUT_S = 15


def test_every_printed_example_answers_with_the_promised_version():
    require_wasm_module()
    proc = subprocess.run([sys.executable, str(DEMO), "--check"], capture_output=True, text=True,
                          timeout=DEMO_TIMEOUT_S, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    printed = [line for line in proc.stdout.splitlines() if line.startswith("curl -s ")]
    checked = [line for line in proc.stdout.splitlines() if line.startswith("ok   ")]
    assert len(printed) >= 10 and len(checked) == len(printed) - 1, output  # -1: the metrics hint
    for version in ("v1", "v2", "v3"):
        assert any(f"-> {version}" in line for line in checked), f"no example shows {version}:\n{output}"


def _read_until(proc: subprocess.Popen, marker: str, timeout_s: float) -> str:
    """Demo output up to `marker`, reading raw bytes so no line hides in a buffer."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    seen = b""
    deadline = time.monotonic() + timeout_s
    while marker.encode() not in seen and time.monotonic() < deadline:
        if selector.select(timeout=0.2):
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break  # the demo exited
            seen += chunk
    return seen.decode(errors="replace")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_stops_everything_on_a_signal(signum):
    require_wasm_module()
    proc = subprocess.Popen([sys.executable, "-u", str(DEMO), "--ephemeral-ports"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        banner = _read_until(proc, "Ctrl-C stops", timeout_s=60)
        assert "Ctrl-C stops" in banner, banner
        admin_url = re.search(r"admin (http://127\.0\.0\.1:\d+)", banner).group(1)
        assert httpx.get(f"{admin_url}/ready", timeout=5, trust_env=False).status_code == 200
        proc.send_signal(signum)
        assert proc.wait(timeout=STOP_TIMEOUT_S) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{admin_url}/ready", timeout=2, trust_env=False)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)
        proc.stdout.close()
