"""docs/metrics.md and envoyfilter/flagger/metric-template.yaml: every PromQL query runs.

A real Prometheus scrapes two Envoys' /stats/prometheus (labels as Istio's sample
Prometheus gives gateway pods), one with canary-tagger's labels (stats-tags.yaml) and one
without, while mixed traffic goes through both with the Flagger recipe's plugin config;
after one rejected ECDS update every query of the page and of the Flagger templates is
evaluated and must return a value (PromQL pitfalls such as `rate()` over several metric
names fail here with "vector cannot contain metrics with the same labelset"). The queries
for labels only find data on the first Envoy, the page's query for names without labels
only on the second. And the per-version totals Prometheus reports from the labels are the
counters /stats shows.

The Grafana dashboard (docs/grafana/canary-tagger-dashboard.json) is checked the same way:
every panel target's `expr`, with the dashboard's variables given concrete values, runs
against a real Prometheus scraping an Envoy with Istio's cluster names and cluster stats
tags (canary_e2e/rollout.py) after known traffic, and must return a finite value for
some series; its variable queries (`label_values`) must list the values the test gives
them. Its structure is checked against Grafana's published dashboard schema: see
test_the_dashboard_is_a_grafana_dashboard for what that covers.

Needs the `prometheus` binary (Debian package `prometheus`); skipped without it.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml

from canary_e2e import prometheus as scraper
from canary_e2e.ecds import EcdsEnvoy
from canary_e2e.envoy_process import REPO_ROOT, require_wasm_module
from canary_e2e.rollout import CLUSTERS, IstioNamedEnvoy, plugin_config, send_traffic

DOC = REPO_ROOT / "docs" / "metrics.md"
FLAGGER = REPO_ROOT / "envoyfilter" / "flagger"
FLAGGER_PLUGIN_CONFIG = FLAGGER / "plugin-config.json"
TRAFFIC_S = 8.0
# The templates use Flagger's {{ interval }}; this Prometheus scrapes every second, so the
# test gives them a short one.
TEMPLATE_INTERVAL = "6s"
SELECTOR = 'namespace="istio-system", app="istio-ingressgateway"'
# A bound for a stuck Prometheus, not a speed requirement.
QUERY_DATA_TIMEOUT_S = 60.0
DASHBOARD = REPO_ROOT / "docs" / "grafana" / "canary-tagger-dashboard.json"
# What Grafana would put in for the dashboard's variables. The window is longer than the
# whole test, so that the rates see all of its traffic.
DASHBOARD_VARIABLES = {"$__rate_interval": "5m", "$namespace": "istio-system",
                       "$gateway": "istio-ingressgateway"}
STICKY_KEYS_ENV = "CANARY_TAGGER_STICKY_KEYS"
SCHEMAS = Path(__file__).parent / "schemas"  # where they come from: schemas/README.md


def doc_queries() -> list[str]:
    queries = re.findall(r"```promql\n(.*?)```", DOC.read_text(), re.S)
    return [" ".join(q.split()) for q in queries]


def template_queries() -> dict[str, str]:
    templates = [doc for doc in yaml.safe_load_all((FLAGGER / "metric-template.yaml").read_text())
                 if doc and doc.get("kind") == "MetricTemplate"]
    return {t["metadata"]["name"]: " ".join(t["spec"]["query"].replace("{{ interval }}", TEMPLATE_INTERVAL).split())
            for t in templates if "canary_tagger_" in t["spec"]["query"]}


def test_the_page_has_a_query_per_counter_and_two_templates():
    queries = doc_queries()
    assert len(queries) >= 11
    text = " ".join(queries)
    for metric in ("canary_tagger_requests_total", "canary_tagger_normalized_total",
                   "canary_tagger_client_tag_stripped_total", "canary_tagger_sticky_id_issued_total",
                   "canary_tagger_client_ip_fallback_total", "canary_tagger_config_rejected_total"):
        assert f"{metric}{{" in text, f"no query for {metric}"
    for label in ('decided_by="default"', 'decided_by="trusted_tag"', 'decided_by="rule"',
                  "by (version)", "by (rule, version)", "by (header)"):
        assert label in text, f"no query with {label}"
    assert "canary_tagger_requests_.+_total" in text, "no query for the names without labels"
    assert set(template_queries()) == {"canary-tagged-share", "canary-tagger-config-rejected"}


def ask_until_each_has_data(api: str, queries: list[tuple[str, str]], has_data
                            ) -> tuple[list[str], dict[str, list]]:
    """Asks Prometheus every (label, query) again until each answer's rows satisfy
    `has_data` (a rate needs two scrapes since its series appeared), one query is refused
    (at once), or QUERY_DATA_TIMEOUT_S passed: (the problems, the last rows by label)."""
    deadline = time.monotonic() + QUERY_DATA_TIMEOUT_S
    while True:
        errors, empty, answers = [], [], {}
        for label, query in queries:
            about = f"{label}: {query}" if label else query
            answer = httpx.get(api, params={"query": query}, timeout=10).json()
            if answer.get("status") != "success":
                errors.append(f"{about}\n  -> {answer.get('error')}")
                continue
            rows = answers[label] = answer["data"]["result"]
            if not has_data(rows):
                empty.append(f"{about}\n  -> {rows} after {QUERY_DATA_TIMEOUT_S}s")
        if errors or not empty or time.monotonic() > deadline:
            return errors + empty, answers
        time.sleep(0.5)


def test_every_documented_query_returns_data(prometheus_binary, tmp_path):
    require_wasm_module()
    config = json.loads(FLAGGER_PLUGIN_CONFIG.read_text())
    # Give every counter kind a reason to exist.
    config["client_ip"] = {"from": "xff", "trusted_hops": 1}
    config["trusted_tag_sources"] = ["10.20.0.0/16"]
    config["normalize"] = [{"header": "grpcsvc", "allowed": ["v1", "v2"], "default": "v1",
                            "when": {"header": "content-type", "prefix": "application/grpc"}}]
    labelled = EcdsEnvoy(config, work_dir=tmp_path / "labelled")
    unlabelled = EcdsEnvoy(config, work_dir=tmp_path / "unlabelled", stats_tags=False)
    envoys = {"istio-ingressgateway-0": labelled, "istio-ingressgateway-1": unlabelled}
    prometheus = None
    try:
        for envoy in envoys.values():
            envoy.start()
        prometheus, base = scraper.start(prometheus_binary, tmp_path, {
            f"127.0.0.1:{envoy.admin_port}": {"namespace": "istio-system", "app": "istio-ingressgateway",
                                              "pod": pod}
            for pod, envoy in envoys.items()})
        api = f"{base}/api/v1/query"
        # Traffic only once Prometheus scrapes both, so that the rates see it.
        wait_for(api, "count(up == 1)", lambda result: result == [len(envoys)])

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
            for envoy in envoys.values():
                assert envoy.request("/", headers=headers, http2=bool(n % 2)).status == 200
            n += 1
            time.sleep(0.01)
        for envoy in envoys.values():
            envoy.deliver({"versions": ["primary"], "default_version": "canary"})  # rejected
            assert envoy.wait_for_stat("wasmcustom.canary_tagger_config_rejected_total", 1, 5.0) is not None
        # The labels carry the right values: Prometheus' totals per version are /stats'.
        final = sum_by_version(labelled)
        assert final, "no canary_tagger_requests_total in /stats"
        wait_for(api, f"sum by (version) (canary_tagger_requests_total{{{SELECTOR}}})",
                 lambda result: {version: int(value) for version, value in result} == final,
                 by_label="version")

        # A query that Prometheus refuses fails at once; one without data yet (a rate needs
        # two scrapes since the series appeared) is asked again until QUERY_DATA_TIMEOUT_S.
        queries = doc_queries() + list(template_queries().values())
        problems, _ = ask_until_each_has_data(api, [("", query) for query in queries], bool)
        assert not problems, "queries that do not work:\n" + "\n".join(problems)
    finally:
        if prometheus is not None:
            scraper.stop(prometheus)
        for envoy in envoys.values():
            envoy.stop()


def sum_by_version(envoy: EcdsEnvoy) -> dict[str, int]:
    """Requests per version from /stats' names (the part the labels come from)."""
    totals: dict[str, int] = {}
    for name, value in envoy.filter_counters().items():
        match = re.fullmatch(r"wasmcustom\.canary_tagger_requests\..*version=\.=(.*?);\.;total", name)
        if match:
            totals[match.group(1)] = totals.get(match.group(1), 0) + value
    return totals


def wait_for(api: str, query: str, done, by_label: str | None = None, timeout_s: float = 60.0):
    """Poll an instant query until done(result) holds: result is the list of values, or
    of (label value, value) pairs with by_label. Fails with the last result after
    timeout_s (a bound for a stuck Prometheus, not a speed requirement)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = httpx.get(api, params={"query": query}, timeout=10)
            # While starting, Prometheus listens but answers 503 "Service Unavailable".
            answer = response.json() if response.status_code == 200 else {}
        except httpx.TransportError:  # Prometheus is still starting
            answer = {}
        rows = answer.get("data", {}).get("result", [])
        values = [float(r["value"][1]) for r in rows]
        result = values if by_label is None else [(r["metric"].get(by_label), v) for r, v in zip(rows, values)]
        if done(result):
            return
        assert time.monotonic() < deadline, f"{query}: still {result} after {timeout_s}s"
        time.sleep(0.5)


# ------------------------------------------------------------------------ the dashboard

def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_targets() -> list[tuple[str, str]]:
    """(panel title, expr with the variables substituted) of every panel target."""
    def substitute(expr: str) -> str:
        for name, value in DASHBOARD_VARIABLES.items():
            expr = expr.replace(name, value)
        assert "$" not in expr.replace('"$1"', ""), f"a variable the test does not know in {expr}"
        return expr
    return [(panel["title"], substitute(target["expr"]))
            for panel in dashboard()["panels"] for target in panel["targets"]]


def test_the_dashboard_has_a_panel_per_view_on_the_datasource_variable():
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "gateway"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
    exprs = " ".join(target["expr"] for panel in board["panels"] for target in panel["targets"])
    for metric in ("canary_tagger_requests_total", "canary_tagger_ramp_percent",
                   "canary_tagger_client_tag_stripped_total", "canary_tagger_sticky_id_issued_total",
                   "canary_tagger_sticky_id_rejected_total", "canary_tagger_config_rejected_total",
                   'envoy_cluster_upstream_rq{', "envoy_cluster_upstream_rq_total",
                   "envoy_cluster_upstream_rq_time_bucket", 'decided_by="rule"', "histogram_quantile(0.99"):
        assert metric in exprs, f"no panel reads {metric}"


def test_the_dashboard_is_a_grafana_dashboard():
    """The dashboard against Grafana's own JSON Schemas (schemas/README.md): the classic
    dashboard model of Grafana 12.3 (top level, panels, grid positions, targets' datasource
    references, variables and their types, annotations; unknown fields are errors where
    Grafana's schema closes the object, as it does for panels and variable options), and
    each panel's `options` against its panel type's schema. What they cannot say — that
    Grafana renders it, that the queries work — is the next test's and the import steps'
    business; Grafana itself is not run here."""
    board = dashboard()
    schema = json.loads((SCHEMAS / "grafana-dashboard.jsonschema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(board)]
    for panel in board["panels"]:
        panel_schema = json.loads((SCHEMAS / f"grafana-panel-{panel['type']}.jsonschema.json").read_text())
        options = {"definitions": panel_schema["definitions"], "$ref": "#/definitions/Options"}
        errors += [f"{panel['title']}: options {list(e.absolute_path)}: {e.message}"
                   for e in jsonschema.Draft7Validator(options).iter_errors(panel["options"])]
    assert not errors, "\n".join(errors)
    # The schemas do say no: a panel wider than the grid, an unknown variable type.
    broken = json.loads(json.dumps(board))
    broken["panels"][0]["gridPos"]["w"] = 25
    broken["templating"]["list"][0]["type"] = "prometheus"
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(broken))) == 2


def test_every_dashboard_panel_returns_data(prometheus_binary, tmp_path):
    require_wasm_module()
    config = plugin_config()
    # Signing, so that sticky_id_rejected exists (at 0) for its panel.
    config["sticky_cookie"]["signing"] = {"keys_env": STICKY_KEYS_ENV}
    key = base64.b64encode(b"dashboard-test-key-of-32-bytes!!").decode()
    envoy = IstioNamedEnvoy(config, work_dir=tmp_path, vm_env={STICKY_KEYS_ENV: f"k1:{key}"})
    prometheus = None
    try:
        envoy.start()
        prometheus, base = scraper.start(prometheus_binary, tmp_path, {
            f"127.0.0.1:{envoy.admin_port}": {"namespace": "istio-system", "app": "istio-ingressgateway",
                                              "pod": "istio-ingressgateway-0"}})
        api = f"{base}/api/v1/query"
        wait_for(api, "count(up == 1)", lambda result: result == [1])
        # Two rounds of known traffic (each with two 5xx from v1's upstream), the second
        # only once Prometheus has scraped the first in the upstream latency histogram
        # (Envoy publishes histograms at its stats flush): then every rate, the histogram's
        # included, has two different samples in its window.
        histogram = 'sum(envoy_cluster_upstream_rq_time_count{cluster_name=~"outbound[|].*"})'
        for rounds in (1, 2):
            expected = send_traffic(envoy)
            sent = sum(row["requests"] for row in expected["versions"].values())
            wait_for(api, histogram, lambda result: result == [float(sent * rounds)])

        # The variables' queries list the values the test gives them.
        for variable in dashboard()["templating"]["list"]:
            if variable["type"] != "query":
                continue
            query = variable["query"].replace("$namespace", DASHBOARD_VARIABLES["$namespace"])
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
            assert match, query
            answer = httpx.get(f"{base}/api/v1/label/{match.group(2)}/values",
                               params={"match[]": match.group(1)}, timeout=10).json()
            assert DASHBOARD_VARIABLES[f"${variable['name']}"] in answer["data"], (query, answer)

        finite = lambda rows: any(math.isfinite(float(row["value"][1])) for row in rows)  # noqa: E731
        problems, answers = ask_until_each_has_data(
            api, dashboard_targets(), finite)
        assert not problems, "panels without data:\n" + "\n".join(problems)

        # The cluster panels found each version by its Istio cluster name, both kinds of
        # name (v2's is a per-version Service): v1's upstream answered 5xx, the others not.
        share = {row["metric"]["version"]: float(row["value"][1])
                 for row in answers["Upstream 5xx share per version"]}
        assert set(share) == set(CLUSTERS), share
        assert share["v1"] > 0 and share["v2"] == 0 and share["v3"] == 0, share
        p99 = {row["metric"]["version"] for row in answers["Upstream p99 latency per version"]}
        assert p99 == set(CLUSTERS), p99
    finally:
        if prometheus is not None:
            scraper.stop(prometheus)
        envoy.stop()
