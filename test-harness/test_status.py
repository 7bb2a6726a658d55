"""`canary-tagger status` reads back what a real Envoy counted.

Envoy runs the filter with a fixed rule, a ramped split and the default, its clusters named
as Istio names them (`outbound|PORT|SUBSET|HOST` for v1 and v3, `outbound|PORT||SERVICE-
VERSION.NS.svc.cluster.local` for v2) and Istio's cluster stats tags. Known traffic goes
through it; `status --admin --json` must report exactly those counts, per version, rule,
kind of decision, ramp, counter and upstream (a version's 5xx from its echo upstream told
to fail). The same, saved as /stats and as /stats/prometheus and read with `--stats FILE`
and `--stats -`, and read from a real Prometheus scraping that Envoy, must give the same
numbers. Both with canary-tagger's stats tags and without them (the labels stay in the
names). Sources that cannot be read exit 2 with one line on stderr.
"""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from canary_e2e import prometheus
from canary_e2e.cli import cli_binary
from canary_e2e.envoy_process import free_port
from canary_e2e.rollout import IstioNamedEnvoy, plugin_config, send_traffic

# A bound for a stuck Prometheus, not a speed requirement.
PROMETHEUS_TIMEOUT_S = 60.0


def status(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(cli_binary()), "status", *args], input=stdin, capture_output=True,
                          text=True, timeout=60)
    assert "panicked" not in done.stderr and "RUST_BACKTRACE" not in done.stderr, done.stderr
    return done


def counted(done: subprocess.CompletedProcess) -> dict:
    """The JSON of a successful `status --json` without what differs between sources:
    where it read, and the p99 (Envoy's own quantile in /stats, interpolated within the
    coarser buckets of /stats/prometheus)."""
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    report.pop("source")
    for row in report.get("upstream", {}).values():
        row.pop("p99_ms", None)
    return report


def fails_with_one_line(done: subprocess.CompletedProcess, *words: str):
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("canary-tagger: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module", params=[True, False], ids=["stats-tags", "flat-names"])
def counted_envoy(request, tmp_path_factory):
    envoy = IstioNamedEnvoy(plugin_config(), stats_tags=request.param,
                            work_dir=tmp_path_factory.mktemp("envoy"))
    envoy.start()
    try:
        expected = send_traffic(envoy)
        yield envoy, expected
    finally:
        envoy.stop()


def test_admin_shows_exactly_what_was_sent(counted_envoy):
    envoy, expected = counted_envoy
    assert counted(status("--admin", envoy.admin_url, "--json")) == expected
    text = status("--admin", envoy.admin_url)
    assert text.returncode == 0, text.stderr
    assert "testers" in text.stdout and "UPSTREAM" in text.stdout and "50%" in text.stdout


def test_saved_dumps_read_the_same(counted_envoy, tmp_path):
    envoy, expected = counted_envoy
    for page in ("/stats", "/stats/prometheus"):
        text = envoy.admin_get(page)
        dump = tmp_path / ("stats.txt" if page == "/stats" else "prometheus.txt")
        dump.write_text(text)
        assert counted(status("--stats", str(dump), "--json")) == expected, page
        assert counted(status("--stats", "-", "--json", stdin=text)) == expected, page
        # Cut inside a line, as a copy that stopped early is.
        cut = text[: len(text) // 2].rstrip("\n")[:-3]
        fails_with_one_line(status("--stats", "-", stdin=cut), "truncated")


def test_a_cluster_regex_overrides_istio_names(counted_envoy):
    envoy, expected = counted_envoy
    done = status("--admin", envoy.admin_url, "--json", "--cluster-version", r"\|\|echo-(v[0-9])\.")
    assert counted(done)["upstream"] == {"v2": expected["upstream"]["v2"]}


def test_a_window_shows_rates_of_nothing_when_nothing_is_sent(counted_envoy):
    envoy, _ = counted_envoy
    report = json.loads(status("--admin", envoy.admin_url, "--json", "--window", "500ms").stdout)
    assert report["window_s"] == 0.5
    assert {v: row["requests"] for v, row in report["versions"].items()} == {"v1": 0, "v2": 0, "v3": 0}
    assert report["ramps"] == [{"rule": "beta", "percent": 50}]  # a gauge: its value, not a rate


def test_sources_that_cannot_be_read_exit_2_with_one_line(counted_envoy, tmp_path):
    envoy, _ = counted_envoy
    fails_with_one_line(status("--admin", f"http://127.0.0.1:{free_port()}"), "cannot read")
    # An HTTP server that is not an Envoy admin: the echo upstream answers JSON.
    upstream = next(iter(envoy.upstreams.values()))
    fails_with_one_line(status("--admin", f"http://127.0.0.1:{upstream.port}"), "not Envoy's stats")
    fails_with_one_line(status("--stats", str(tmp_path / "missing.txt")), "no such file")
    (tmp_path / "page.html").write_text("<!doctype html>\n<title>Envoy Admin</title>\n")
    fails_with_one_line(status("--stats", str(tmp_path / "page.html")), "neither /stats")


def test_prometheus_reads_the_same(counted_envoy, prometheus_binary, tmp_path):
    envoy, expected = counted_envoy
    target = envoy.admin_url.removeprefix("http://")
    scraping, url = prometheus.start(prometheus_binary, tmp_path / "scraping", {target: {"pod": "gateway-0"}})
    empty, empty_url = prometheus.start(prometheus_binary, tmp_path / "empty", {})
    try:
        fails_with_one_line(status("--prometheus", empty_url), "no canary_tagger_ series")
        # Until the first scrape Prometheus has no series of ours: asked again until then.
        deadline = time.monotonic() + PROMETHEUS_TIMEOUT_S
        while True:
            done = status("--prometheus", url, "--json")
            if done.returncode == 0 and counted(done) == expected:
                break
            assert time.monotonic() < deadline, (done.stdout, done.stderr)
            time.sleep(0.5)
        # Rates from the samples of now and of a second ago. Every scrape saw the final
        # counts (the traffic came first), so they are all 0 — once a second ago is after
        # the first scrape (before it, there were no series to compare with).
        while True:
            done = status("--prometheus", url, "--json", "--window", "1s")
            if done.returncode == 0:
                break
            assert "no canary_tagger_ series" in done.stderr, done.stderr
            assert time.monotonic() < deadline, done.stderr
            time.sleep(0.5)
        report = json.loads(done.stdout)
        assert report["window_s"] == 1
        assert {v: row["requests"] for v, row in report["versions"].items()} == {"v1": 0, "v2": 0, "v3": 0}
        assert report["ramps"] == expected["ramps"]
    finally:
        prometheus.stop(scraping)
        prometheus.stop(empty)
