"""A real Prometheus (Debian package `prometheus`) scraping Envoys' /stats/prometheus every
second, for the tests that run PromQL (test_metrics_promql.py) or read it
(`canary-tagger status --prometheus`, test_status.py). The `prometheus_binary` fixture in
conftest.py skips a test when it is not installed."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx

from .envoy_process import free_port

# A bound for a stuck Prometheus, not a speed requirement.
READY_TIMEOUT_S = 60.0


def start(binary: str, work: Path, targets: dict[str, dict[str, str]]) -> tuple[subprocess.Popen, str]:
    """Prometheus scraping each `host:port` of `targets` (with that target's labels) into a
    database under `work`, once it is ready: (the process, its base URL)."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    jobs = [{"job_name": "gateway", "metrics_path": "/stats/prometheus",
             "static_configs": [{"targets": [target], "labels": labels}
                                for target, labels in targets.items()]}] if targets else []
    (work / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": jobs}))
    with open(work / "prometheus.log", "w") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{url}/-/ready", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass  # still starting
        if time.monotonic() > deadline:
            stop(process)
            raise AssertionError(f"Prometheus not ready after {READY_TIMEOUT_S}s")
        time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
