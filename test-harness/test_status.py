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
import shutil
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import yaml

from canary_e2e.cli import cli_binary
from canary_e2e.envoy_process import EnvoyUnderTest, free_port
from canary_e2e.upstreams import STATUS_HEADER

CLUSTERS = {
    "v1": "outbound|8080|v1|echo.shop.svc.cluster.local",
    "v2": "outbound|8080||echo-v2.shop.svc.cluster.local",
    "v3": "outbound|8080|v3|echo.shop.svc.cluster.local",
}
# Istio's bootstrap tags for cluster stats (its envoy_bootstrap.json): the whole cluster
# name as `cluster_name`, `upstream_rq_5xx` as `upstream_rq{response_code_class="5xx"}`.
ISTIO_CLUSTER_TAGS = [
    {"tag_name": "cluster_name", "regex": r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)"},
    {"tag_name": "response_code_class", "regex": r"_rq(_(\dxx))$"},
]
# A bound for a stuck Prometheus, not a speed requirement.
PROMETHEUS_TIMEOUT_S = 60.0


def plugin_config() -> dict:
    # The ramp started an hour ago and lasts ten years: its gauge reads 50 for the test.
    start = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "versions": ["v1", "v2", "v3"],
        "default_version": "v1",
        "rules": [
            {"name": "testers", "match": {"cookie": "user", "exact": "tester"}, "version": "v2"},
            {"name": "beta", "match": {"header": "x-beta", "exact": "1"},
             "split": {"weights": [{"version": "v3", "percent": 50}, {"version": "v1", "percent": 50}],
                       "ramp": {"start": start, "duration_s": 315360000, "to": 100},
                       "key": ["header:x-user"]}},
        ],
        "sticky_cookie": {"name": "canary-uid"},
    }


class IstioNamedEnvoy(EnvoyUnderTest):
    """EnvoyUnderTest with Istio's cluster names and cluster stats tags."""

    def write_config(self) -> Path:
        path = super().write_config()
        bootstrap = yaml.safe_load(path.read_text())
        for cluster in bootstrap["static_resources"]["clusters"]:
            if cluster["name"] in CLUSTERS:
                cluster["name"] = cluster["load_assignment"]["cluster_name"] = CLUSTERS[cluster["name"]]
        for listener in bootstrap["static_resources"]["listeners"]:
            manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
            for host in manager["route_config"]["virtual_hosts"]:
                for route in host["routes"]:
                    route["route"]["cluster"] = CLUSTERS.get(route["route"]["cluster"], route["route"]["cluster"])
        bootstrap.setdefault("stats_config", {}).setdefault("stats_tags", []).extend(ISTIO_CLUSTER_TAGS)
        path.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
        return path


def send_traffic(envoy: EnvoyUnderTest) -> dict:
    """Known traffic; returns the JSON `status` must print (its counting fields)."""
    beta = {"v1": 0, "v3": 0}
    for i in range(3):
        assert envoy.request("/", headers={"cookie": "user=tester"}).body["version"] == "v2"
    for i in range(4):  # a spoofed tag, stripped: the default decides
        assert envoy.request("/", headers={"x-canary-version": "v3"}).body["version"] == "v1"
    for i in range(2):  # the default's upstream fails
        assert envoy.request("/", headers={STATUS_HEADER: "503"}).status == 503
    for i in range(40):
        beta[envoy.request("/", headers={"x-beta": "1", "x-user": f"user-{i}"}).body["version"]] += 1
    for i in range(2):  # no key: a sticky id is issued
        reply = envoy.request("/", headers={"x-beta": "1"})
        beta[reply.body["version"]] += 1
        assert "canary-uid=" in reply.headers.get("set-cookie", "")
    assert beta["v3"] > 0 and beta["v1"] > 0, beta
    total = 3 + 4 + 2 + 42
    counts = {"v1": 6 + beta["v1"], "v2": 3, "v3": beta["v3"]}
    return {
        "versions": {v: {"requests": n, "share": round(n / total, 3)} for v, n in counts.items()},
        "rules": [{"rule": "beta", "versions": {v: n for v, n in beta.items() if n}},
                  {"rule": "testers", "versions": {"v2": 3}}],
        "decided_by": {"default": 6, "rule": 45},
        "ramps": [{"rule": "beta", "percent": 50}],
        "counters": {"client_tag_stripped": 4, "sticky_id_issued": 2, "sticky_id_rejected": 0,
                     "config_rejected": 0},
        "upstream": {"v1": {"requests": counts["v1"], "5xx": 2}, "v2": {"requests": 3, "5xx": 0},
                     "v3": {"requests": counts["v3"], "5xx": 0}},
    }


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


@pytest.fixture
def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    return binary


def start_prometheus(binary: str, work: Path, targets: list[str]) -> tuple[subprocess.Popen, str]:
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    jobs = [{"job_name": "gateway", "metrics_path": "/stats/prometheus",
             "static_configs": [{"targets": targets, "labels": {"pod": f"gateway-{i}"}}
                                for i, _ in enumerate(targets)]}] if targets else []
    (work / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": jobs}))
    process = subprocess.Popen(
        [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=open(work / "prometheus.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + PROMETHEUS_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{url}/-/ready", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass  # still starting
        assert time.monotonic() < deadline, f"Prometheus not ready after {PROMETHEUS_TIMEOUT_S}s"
        time.sleep(0.2)


def stop(process: subprocess.Popen):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def test_prometheus_reads_the_same(counted_envoy, prometheus_binary, tmp_path):
    envoy, expected = counted_envoy
    target = envoy.admin_url.removeprefix("http://")
    scraping, url = start_prometheus(prometheus_binary, tmp_path / "scraping", [target])
    empty, empty_url = start_prometheus(prometheus_binary, tmp_path / "empty", [])
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
    finally:
        stop(scraping)
        stop(empty)
