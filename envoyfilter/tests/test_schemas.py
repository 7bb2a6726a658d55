"""The Istio and Flagger resources against their schemas.

Istio: validated with cloudcoil-models-istio, pydantic models generated from the OpenAPI
schemas of Istio 1.24's CRDs (field names and types, enums such as phase, failStrategy
and match mode, the sha256 pattern, required fields). Pydantic drops fields a schema does
not know instead of failing, so each resource is also dumped back and compared with the
file: a misspelt field shows up as a difference. The CRDs' CEL rules (for example the url
scheme list) are not in the models; test_consistency.py checks the ones we rely on.

Flagger: no package registry ships Flagger's CRD schemas, so its Canary and MetricTemplate
get structural checks of the fields Flagger requires and of the ones these recipes use.
"""

from __future__ import annotations

import sys

import pytest

from recipes import ENVOYFILTER, REPO_ROOT, docs, rel, yaml_files

SCHEMA_PACKAGES = REPO_ROOT / ".venv" / "istio-schemas"


def _istio_models():
    if not (SCHEMA_PACKAGES / "cloudcoil" / "models" / "istio").is_dir():
        pytest.fail(
            f"Istio's CRD schemas are not installed in {rel(SCHEMA_PACKAGES)}: run\n"
            f"  .venv/bin/pip install --target .venv/istio-schemas "
            f"-r envoyfilter/tests/requirements.txt\n(`make venv` does it).")
    if str(SCHEMA_PACKAGES) not in sys.path:
        sys.path.append(str(SCHEMA_PACKAGES))  # after the venv: only the models come from it
    from cloudcoil.models.istio.extensions import v1alpha1 as extensions
    from cloudcoil.models.istio.networking import v1 as networking
    from cloudcoil.models.istio.networking import v1alpha3 as networking_v1alpha3

    return {
        ("extensions.istio.io/v1alpha1", "WasmPlugin"): extensions.WasmPlugin,
        ("networking.istio.io/v1alpha3", "EnvoyFilter"): networking_v1alpha3.EnvoyFilter,
        ("networking.istio.io/v1", "Gateway"): networking.Gateway,
        ("networking.istio.io/v1", "VirtualService"): networking.VirtualService,
        ("networking.istio.io/v1", "DestinationRule"): networking.DestinationRule,
    }


def _istio_documents():
    for path in yaml_files():
        for index, doc in enumerate(docs(path)):
            if str(doc.get("apiVersion", "")).endswith("istio.io/v1alpha1") or \
                    ".istio.io/" in str(doc.get("apiVersion", "")):
                yield pytest.param(path, doc, id=f"{rel(path)}#{index}-{doc.get('kind')}")


def _differences(expected, actual, path="") -> list[str]:
    """Where `actual` (the model's dump) lost or changed something of `expected` (the file)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or '.'}: not an object after validation"]
        found = []
        for key, value in expected.items():
            where = f"{path}.{key}" if path else key
            if key not in actual:
                found.append(f"{where}: not a field of the schema")
            else:
                found += _differences(value, actual[key], where)
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: list changed by validation"]
        found = []
        for i, (a, b) in enumerate(zip(expected, actual)):
            found += _differences(a, b, f"{path}[{i}]")
        return found
    if expected != actual and not (isinstance(expected, (int, float)) and expected == actual):
        return [f"{path}: {expected!r} became {actual!r}"]
    return []


@pytest.mark.parametrize("path,doc", list(_istio_documents()))
def test_istio_resource_matches_crd_schema(path, doc):
    models = _istio_models()
    key = (doc["apiVersion"], doc["kind"])
    assert key in models, f"{rel(path)}: {key} is not one of the Istio kinds these recipes use"
    model = models[key].model_validate(doc)  # raises with every schema violation listed
    dumped = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    problems = _differences(doc, dumped)
    assert not problems, f"{rel(path)} {doc['kind']} {doc['metadata']['name']}: {problems}"


def test_schema_check_has_teeth():
    """A wrong enum, a misspelt field and a bad sha256 are all caught."""
    models = _istio_models()
    import pydantic

    doc = docs(ENVOYFILTER / "weather" / "wasmplugin.yaml")[0]
    plugin = models[("extensions.istio.io/v1alpha1", "WasmPlugin")]
    with pytest.raises(pydantic.ValidationError):
        plugin.model_validate({**doc, "spec": {**doc["spec"], "phase": "BEFORE_ROUTER"}})
    with pytest.raises(pydantic.ValidationError):
        plugin.model_validate({**doc, "spec": {**doc["spec"], "sha256": "sha256:abc"}})
    with pytest.raises(pydantic.ValidationError):
        plugin.model_validate({**doc, "spec": {**doc["spec"], "match": [{"mode": "GATEWAY"}]}})
    misspelt = {**doc, "spec": {**doc["spec"], "failstrategy": "FAIL_OPEN"}}
    dumped = plugin.model_validate(misspelt).model_dump(by_alias=True, exclude_unset=True,
                                                       mode="json")
    assert _differences(misspelt, dumped) == ["spec.failstrategy: not a field of the schema"]


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
