"""docs/metrics.md: every PromQL query and Flagger MetricTemplate query there runs.

A real Prometheus scrapes Envoy's /stats/prometheus (labels as Istio's sample Prometheus
gives gateway pods) while mixed traffic goes through canary-tagger with the Flagger
recipe's plugin config; after one rejected ECDS update every query of the page is
evaluated and must return a value (PromQL pitfalls such as `rate()` over several metric
names fail here with "vector cannot contain metrics with the same labelset").

Needs the `prometheus` binary (Debian package `prometheus`); skipped without it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from canary_e2e.ecds import EcdsEnvoy
from canary_e2e.envoy_process import REPO_ROOT, free_port, require_wasm_module

DOC = REPO_ROOT / "docs" / "metrics.md"
FLAGGER_PLUGIN_CONFIG = REPO_ROOT / "envoyfilter" / "flagger" / "plugin-config.json"
TRAFFIC_S = 8.0
# The templates use Flagger's {{ interval }} and a 15 s subquery step (a typical scrape
# interval); this Prometheus scrapes every second, so the test shrinks both.
TEMPLATE_INTERVAL = "6s"


def doc_queries() -> list[str]:
    text = DOC.read_text()
    queries = re.findall(r"```promql\n(.*?)```", text, re.S)
    templates = re.findall(r"  query: \|\n(.*?)\n(?:---|```)", text, re.S)
    queries += [t.replace("{{ interval }}", TEMPLATE_INTERVAL).replace(":15s]", ":1s]") for t in templates]
    return [" ".join(q.split()) for q in queries]


def test_the_page_has_a_query_per_counter_and_two_templates():
    queries = doc_queries()
    assert len(queries) >= 12
    text = " ".join(queries)
    for counter in ("canary_tagger_requests_rule_", "canary_tagger_requests_default_", "canary_tagger_requests_trusted_tag_",
                    "canary_tagger_normalized_", "canary_tagger_client_tag_stripped", "canary_tagger_sticky_id_issued",
                    "canary_tagger_client_ip_fallback", "canary_tagger_config_rejected"):
        assert counter in text, f"no query for {counter}"


@pytest.fixture
def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    return binary


def test_every_documented_query_returns_data(prometheus_binary, tmp_path):
    require_wasm_module()
    config = json.loads(FLAGGER_PLUGIN_CONFIG.read_text())
    # Give every counter kind a reason to exist.
    config["client_ip"] = {"from": "xff", "trusted_hops": 1}
    config["trusted_tag_sources"] = ["10.20.0.0/16"]
    config["normalize"] = [{"header": "grpcsvc", "allowed": ["v1", "v2"], "default": "v1",
                            "when": {"header": "content-type", "prefix": "application/grpc"}}]
    envoy = EcdsEnvoy(config, work_dir=tmp_path / "envoy")
    envoy.start()
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{
            "job_name": "gateway",
            "metrics_path": "/stats/prometheus",
            "static_configs": [{"targets": [f"127.0.0.1:{envoy.admin_port}"],
                                "labels": {"namespace": "istio-system", "app": "istio-ingressgateway",
                                           "pod": "istio-ingressgateway-0"}}],
        }],
    }))
    log = open(tmp_path / "prometheus.log", "w")
    prometheus = subprocess.Popen(
        [prometheus_binary, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1/query"
    try:
        mix = [
            {"cookie": "user=tester"},
            {"x-canary-version": "canary", "x-forwarded-for": "203.0.113.9"},
            {"x-canary-version": "canary", "x-forwarded-for": "10.20.1.5"},
            {"content-type": "application/grpc"},
            {"x-forwarded-for": "not-an-ip"},
            {"cookie": "theme=dark"},
        ]
        end = time.monotonic() + TRAFFIC_S
        n = 0
        while time.monotonic() < end:
            headers = {"x-forwarded-for": "203.0.113.7", **mix[n % len(mix)]}
            assert envoy.request("/", headers=headers, http2=bool(n % 2)).status == 200
            n += 1
            time.sleep(0.01)
        envoy.deliver({"versions": ["primary"], "default_version": "canary"})  # rejected
        assert envoy.wait_for_stat("wasmcustom.canary_tagger.config_rejected", 1, 5.0) is not None
        time.sleep(3.0)  # a few more scrapes

        problems = []
        for query in doc_queries():
            answer = httpx.get(api, params={"query": query}, timeout=10).json()
            if answer.get("status") != "success":
                problems.append(f"{query}\n  -> {answer.get('error')}")
            elif not answer["data"]["result"]:
                problems.append(f"{query}\n  -> no data")
        assert not problems, "queries of docs/metrics.md that do not work:\n" + "\n".join(problems)
    finally:
        prometheus.terminate()
        try:
            prometheus.wait(timeout=10)
        except subprocess.TimeoutExpired:
            prometheus.kill()
        log.close()
        envoy.stop()
