"""The Istio, Gateway API, core Kubernetes and Flagger resources against their schemas.

Istio and Gateway API: every resource under envoyfilter/ and every `canary-tagger render`
output is validated by the jsonschema package against the published CRDs vendored in
crds/ (Istio 1.30.3; Gateway API v1.6.1, standard channel; crds/README.md), read as the
API server reads them (crd_schema.py): types, enums such as phase and failStrategy, the
sha256 and header-name patterns, required fields, lengths, and unknown fields (a
misspelt field fails). The CRDs' CEL rules are not evaluated; test_consistency.py checks
the ones we rely on.

Core kinds (apiVersion v1: the Services of the Gateway API and ambient recipes and of the
render output, ambient's Namespace, signed-sticky's Secret): validated against the
published Kubernetes v1.37.0 schemas in their strict form, vendored in
crds/kubernetes-v1.37.0/ (core_schema.py): types (a port is an integer, targetPort an
integer or a string), unknown fields in spec and metadata (a misspelt field fails), and a
metadata.name. Those schemas carry no enums (Service type, port protocol) and no
required lists beyond the API's own (a ServicePort's port).

Flagger: no package registry ships Flagger's CRD schemas, so its Canary and MetricTemplate
get structural checks of the fields Flagger requires and of the ones these recipes use.

Every document with an apiVersion and a kind is one of these, or the test fails.
"""

from __future__ import annotations

import pytest

import core_schema
import crd_schema
from recipes import ENVOYFILTER, docs, plugin_config_path, rel, render, yaml_files


def _documents(has_schema):
    """Every document under envoyfilter/ that `has_schema` picks, as (path, doc) params."""
    for path in yaml_files():
        for index, doc in enumerate(docs(path)):
            if has_schema(doc):
                yield pytest.param(path, doc, id=f"{rel(path)}#{index}-{doc.get('kind')}")


def _crd_documents():
    return _documents(crd_schema.has_crd)


def _core_documents():
    return _documents(core_schema.has_schema)


@pytest.mark.parametrize("path,doc", list(_crd_documents()))
def test_resource_matches_crd_schema(path, doc):
    problems = crd_schema.errors(doc)
    assert not problems, f"{rel(path)} {doc['kind']} {doc['metadata']['name']}: {problems}"


@pytest.mark.parametrize("path,doc", list(_core_documents()))
def test_core_resource_matches_kubernetes_schema(path, doc):
    problems = core_schema.errors(doc)
    assert not problems, f"{rel(path)} {doc['kind']} {doc['metadata']['name']}: {problems}"


def test_every_kubernetes_object_has_a_schema_check():
    """No object escapes: each is Istio/Gateway API (CRD), core (v1) or Flagger (structural)."""
    unchecked = [(rel(path), doc["apiVersion"], doc["kind"])
                 for path in yaml_files() for doc in docs(path)
                 if "apiVersion" in doc and "kind" in doc and path.name != "docker-compose.yaml"
                 and not (crd_schema.has_crd(doc) or core_schema.has_schema(doc)
                          or doc["apiVersion"] == "flagger.app/v1beta1")]
    assert not unchecked, unchecked
    core = {(doc["apiVersion"], doc["kind"]) for _, doc in
            (param.values for param in _core_documents())}
    assert core == {("v1", "Service"), ("v1", "Namespace"), ("v1", "Secret")}, core


def test_every_gateway_api_and_istio_kind_is_checked():
    checked = {(doc["apiVersion"], doc["kind"]) for _, doc, in
               (param.values for param in _crd_documents())}
    assert {("extensions.istio.io/v1alpha1", "WasmPlugin"),
            ("networking.istio.io/v1alpha3", "EnvoyFilter"),
            ("networking.istio.io/v1", "Gateway"),
            ("networking.istio.io/v1", "VirtualService"),
            ("networking.istio.io/v1", "DestinationRule"),
            ("gateway.networking.k8s.io/v1", "Gateway"),
            ("gateway.networking.k8s.io/v1", "HTTPRoute")} <= checked


RENDERS = {
    "istio": ["--host", "weather.example.com", "--service", "frontend", "--namespace",
              "weather", "--gateway", "weather-gateway"],
    "gateway-api": ["--api", "gateway-api", "--gateway", "weather-gateway",
                    "--gateway-namespace", "istio-ingress", "--service", "frontend",
                    "--namespace", "weather", "--host", "weather.example.com"],
    "gateway-api-mesh-waypoint": ["--api", "gateway-api", "--gateway", "weather-gateway",
                                  "--service", "forecast", "--namespace", "weather",
                                  "--port", "8080", "--mesh", "--waypoint", "waypoint"],
}


@pytest.mark.parametrize("folder", ["weather", "mirror", "grpc-normalize", "mqtt", "flagger"])
@pytest.mark.parametrize("variant", list(RENDERS))
def test_render_output_matches_crd_schema(variant, folder):
    rendered = render(str(plugin_config_path(folder)), *RENDERS[variant])
    checked = 0
    for doc in rendered:
        if crd_schema.has_crd(doc):
            assert not crd_schema.errors(doc), (variant, folder, doc["kind"],
                                                crd_schema.errors(doc))
            checked += 1
        else:
            assert (doc["apiVersion"], doc["kind"]) == ("v1", "Service"), doc
            assert not core_schema.errors(doc), (variant, folder, doc["metadata"]["name"],
                                                 core_schema.errors(doc))
    assert checked >= 2


def test_schema_check_has_teeth():
    """A wrong enum, a misspelt field, a bad sha256, a bad header name are all caught."""
    (plugin,) = docs(ENVOYFILTER / "weather" / "wasmplugin.yaml")
    assert crd_schema.errors(plugin) == []
    for spec, expected in [
        ({"phase": "BEFORE_ROUTER"}, "spec.phase: 'BEFORE_ROUTER' is not one of"),
        ({"sha256": "sha256:abc"}, "spec.sha256: 'sha256:abc' does not match"),
        ({"match": [{"mode": "GATEWAY"}]}, "spec.match.0.mode: 'GATEWAY' is not one of"),
        ({"failstrategy": "FAIL_OPEN"}, "spec: Additional properties are not allowed"),
    ]:
        (problem,) = crd_schema.errors({**plugin, "spec": {**plugin["spec"], **spec}})
        assert problem.startswith(expected), problem
    route = next(doc for doc in render(str(plugin_config_path("weather")),
                                       *RENDERS["gateway-api"]) if doc["kind"] == "HTTPRoute")
    assert crd_schema.errors(route) == []
    bad = {**route, "spec": {**route["spec"], "rules": [
        {"matches": [{"headers": [{"type": "Exact", "name": "x canary", "value": "v2"}]}],
         "backendRefs": [{"name": "frontend-v2", "port": 80}]}]}}
    (problem,) = crd_schema.errors(bad)
    assert problem.startswith("spec.rules.0.matches.0.headers.0.name: 'x canary' does not match")
    mistyped = {**route, "spec": {**route["spec"], "parentRefs": [{"name": "gw", "port": "80"}]}}
    assert any("is not of type 'integer'" in p for p in crd_schema.errors(mistyped))


def test_core_schema_check_has_teeth():
    """A misspelt Service or metadata field, a port as a string, no name, an unknown kind."""
    service = next(doc for doc in render(str(plugin_config_path("weather")),
                                         *RENDERS["gateway-api"]) if doc["kind"] == "Service")
    assert core_schema.errors(service) == []
    port = service["spec"]["ports"][0]
    for changed, expected in [
        ({"spec": {**service["spec"], "selecter": service["spec"]["selector"]}},
         "spec: Additional properties are not allowed ('selecter' was unexpected)"),
        ({"spec": {**service["spec"], "ports": [{**port, "port": "80"}]}},
         "spec.ports.0.port: '80' is not of type 'integer'"),
        ({"spec": {**service["spec"], "ports": [{**port, "targetPort": 8080.5}]}},
         "spec.ports.0.targetPort: 8080.5 is not valid under any of the given schemas"),
        ({"metadata": {**service["metadata"], "label": {"app": "frontend"}}},
         "metadata: Additional properties are not allowed ('label' was unexpected)"),
        ({"metadata": {"namespace": "weather"}}, "metadata: 'name' is a required property"),
    ]:
        assert core_schema.errors({**service, **changed}) == [expected]
    (namespace,) = docs(ENVOYFILTER / "ambient" / "namespace.yaml")
    assert core_schema.errors({**namespace, "spec": {"finalizer": ["kubernetes"]}}) == [
        "spec: Additional properties are not allowed ('finalizer' was unexpected)"]
    with pytest.raises(AssertionError, match="has no schema"):
        core_schema.errors({**service, "kind": "Endpoints"})


# ---------------------------------------------------------------- Flagger (structural)

def _flagger_all(kind):
    path = ENVOYFILTER / "flagger" / ("canary.yaml" if kind == "Canary" else "metric-template.yaml")
    found = [d for d in docs(path) if d.get("kind") == kind]
    assert found, f"no {kind} in {rel(path)}"
    for doc in found:
        assert doc["apiVersion"] == "flagger.app/v1beta1"
        assert doc["metadata"]["name"] and doc["metadata"]["namespace"]
    return found


def _flagger(kind):
    (doc,) = _flagger_all(kind)
    return doc


def _duration(text):
    units = {"s": 1, "m": 60, "h": 3600}
    assert isinstance(text, str) and text[:-1].isdigit() and text[-1] in units, \
        f"{text!r} is not a duration like 30s or 1m"
    return int(text[:-1]) * units[text[-1]]


def test_flagger_canary_structure():
    spec = _flagger("Canary")["spec"]
    target = spec["targetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment") and target["name"]
    assert isinstance(spec["service"]["port"], int)
    assert isinstance(spec["service"]["targetPort"], int)
    assert spec["service"]["gateways"] and spec["service"]["hosts"]
    analysis = spec["analysis"]
    _duration(analysis["interval"])
    for field in ("threshold", "maxWeight", "stepWeight"):
        assert isinstance(analysis[field], int) and analysis[field] > 0, field
    assert analysis["stepWeight"] <= analysis["maxWeight"] <= 100
    known = {"name", "thresholdRange", "interval", "templateRef", "templateVariables", "query"}
    for metric in analysis["metrics"]:
        assert metric["name"] and set(metric) <= known, metric
        assert set(metric["thresholdRange"]) <= {"min", "max"} and metric["thresholdRange"]
        _duration(metric["interval"])
    for hook in analysis["webhooks"]:
        assert hook["name"] and hook["url"].startswith("http")
        assert hook.get("type", "rollout") in {
            "confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase",
            "confirm-promotion", "post-rollout", "rollback", "event"}
        _duration(hook["timeout"])
    for match in analysis["match"]:
        assert set(match) <= {"headers", "sourceLabels", "uri", "method", "queryParams"}
        for condition in match["headers"].values():
            assert len(condition) == 1 and set(condition) <= {"exact", "prefix", "suffix", "regex"}


def test_flagger_metric_template_structure():
    templates = {t["metadata"]["name"]: t["spec"] for t in _flagger_all("MetricTemplate")}
    for name, spec in templates.items():
        assert spec["provider"]["type"] == "prometheus", name
        assert spec["provider"]["address"].startswith("http"), name
        assert "{{ interval }}" in spec["query"], name
    query = templates["not-found-percentage"]["query"]
    assert "istio_requests_total" in query and 'response_code="404"' in query
    for variable in ("{{ namespace }}", "{{ target }}"):
        assert variable in query
    # canary-tagger's own gates select its labelled series (docs/metrics.md); real
    # Prometheus runs them in test-harness/test_metrics_promql.py.
    assert 'version="canary"' in templates["canary-tagged-share"]["query"]
    assert "canary_tagger_config_rejected_total" in templates["canary-tagger-config-rejected"]["query"]
