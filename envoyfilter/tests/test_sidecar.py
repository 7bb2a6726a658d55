"""The sidecar-mode recipes (SPEC §8): envoyfilter/sidecar/ and weather's sidecar files.

What a mistake would cost on a cluster: a WasmPlugin on the outbound side only (nothing is
remembered, every call gets the default), on the inbound side only (nothing restored), or
split into two plugins with different configs (two tables: the outbound half never sees
what the inbound half remembered); a label the selector does not match (no plugin); a
route sending a version to a subset the service lacks (503 NR) instead of its stable
version; sidecars that do not know a version the gateway tags (silently the default).
"""

from __future__ import annotations

import copy
import json
import re

import pytest

from recipes import ENVOYFILTER, docs, kinds, plugin_config, rel, require_wasm
from canary_e2e.envoy_process import http_listener, tag_routes
from test_envoy_validate import run_validate, version_clusters, wasm_filter_from_wasmplugin

HEX64 = re.compile(r"^[0-9a-f]{64}$")
GATEWAY_ONLY_FIELDS = {"rules", "normalize", "client_ip", "sticky_cookie", "trusted_tag_sources",
                       "response_header", "baggage"}

# (folder, WasmPlugin file, its plugin config file, label patch, namespace)
SIDECAR_RECIPES = [
    ("sidecar", "wasmplugin.yaml", "plugin-config.json", "workload-label-patch.yaml", "shop"),
    ("weather", "sidecar-wasmplugin.yaml", "sidecar-plugin-config.json",
     "sidecar-workload-patch.yaml", "weather"),
]
IDS = [f"{r[0]}/{r[1]}" for r in SIDECAR_RECIPES]


def _config(folder: str, name: str) -> dict:
    return json.loads((ENVOYFILTER / folder / name).read_text(encoding="utf-8"))


def test_sidecar_folder_is_complete():
    for name in ["README.md", "plugin-config.json", "wasmplugin.yaml", "workload-label-patch.yaml",
                 "virtualservice.yaml", "destinationrule.yaml"]:
        assert (ENVOYFILTER / "sidecar" / name).is_file(), f"envoyfilter/sidecar/{name} is missing"


@pytest.mark.parametrize("folder,plugin,config_name,patch,namespace", SIDECAR_RECIPES, ids=IDS)
def test_sidecar_config_is_sidecar_mode(folder, plugin, config_name, patch, namespace):
    config = _config(folder, config_name)
    assert config["mode"] == "sidecar"
    assert not GATEWAY_ONLY_FIELDS & set(config), f"{folder}/{config_name}: gateway-only fields"
    # All three sources, the app's own tag first: an app that forwards the tag is trusted
    # over baggage, baggage over the trace table (which may have been overwritten).
    assert config["restore"] == ["header", "baggage", "trace"]
    memory = config["trace_memory"]
    assert memory["entries"] >= 1024 and 1 <= memory["ttl_s"] <= 3600, memory


@pytest.mark.parametrize("folder,plugin,config_name,patch,namespace", SIDECAR_RECIPES, ids=IDS)
def test_sidecar_wasmplugin(folder, plugin, config_name, patch, namespace):
    (doc,) = docs(ENVOYFILTER / folder / plugin)
    spec = doc["spec"]
    assert doc["metadata"] == {"name": "canary-tagger-sidecar", "namespace": namespace}
    assert spec["pluginConfig"] == _config(folder, config_name), (
        f"{folder}/{plugin}: pluginConfig differs from {config_name}")
    # Inbound (SERVER) remembers, outbound (CLIENT) restores: ONE plugin for both, so
    # both halves run the same config against the same trace table.
    assert spec["match"] == [{"mode": "SERVER"}, {"mode": "CLIENT"}]
    assert spec["pluginName"] == "canary-tagger"
    assert spec["phase"] == "AUTHZ" and isinstance(spec["priority"], int)
    assert spec["failStrategy"] == "FAIL_OPEN"  # a broken plugin must not fail app traffic
    assert spec["url"] == "oci://ghcr.io/OWNER/canary-tagger:0.1.0"
    assert spec["sha256"] == "" or HEX64.match(spec["sha256"])
    # Workloads by label, never the gateway: the gateway runs its own gateway-mode plugin.
    labels = spec["selector"]["matchLabels"]
    assert "istio" not in labels, labels
    (label_patch,) = docs(ENVOYFILTER / folder / patch)
    assert label_patch["spec"]["template"]["metadata"]["labels"] == labels
    # No other plugin in the folder selects sidecars: two tables would not see each other.
    plugins = kinds(folder, "WasmPlugin")
    sidecar_plugins = [p for p in plugins if p["spec"]["selector"]["matchLabels"] == labels]
    assert len(sidecar_plugins) == 1, [p["metadata"]["name"] for p in plugins]


def test_weather_sidecars_know_the_gateways_versions():
    gateway, sidecar = plugin_config("weather"), _config("weather", "sidecar-plugin-config.json")
    for field in ("versions", "tag_header", "default_version"):
        assert sidecar[field] == gateway[field], field
    # The gateway writes the baggage member the sidecars can restore from.
    assert gateway["baggage"] is True


# ---------------------------------------------------------------- routing per service

def _route_for(vs: dict, tag: str, value: str | None) -> str:
    """The subset Istio picks for a call whose tag is `value` (None: no tag): the first
    route whose match holds, as Envoy evaluates them."""
    for route in vs["spec"]["http"]:
        matches = route.get("match")
        if matches is None or any(match.get("headers", {}).get(tag, {}).get("exact") == value
                                  for match in matches if value is not None):
            (destination,) = route["route"]
            return destination["destination"]["subset"]
    raise AssertionError(f"{vs['metadata']['name']}: no route for {tag}={value}")


def test_every_service_routes_only_on_the_tag():
    config = plugin_config("sidecar")
    tag, versions, default = config["tag_header"], config["versions"], config["default_version"]
    rules = {dr["spec"]["host"]: dr for dr in kinds("sidecar", "DestinationRule")}
    services = kinds("sidecar", "VirtualService")
    assert {vs["spec"]["hosts"][0] for vs in services} == set(rules) == {"cart", "payment", "catalog"}
    for vs in services:
        name = vs["metadata"]["name"]
        assert vs["metadata"]["namespace"] == rules[vs["spec"]["hosts"][0]]["metadata"]["namespace"]
        assert "gateways" not in vs["spec"], f"{name}: mesh routes, not a gateway's"
        (host,) = vs["spec"]["hosts"]
        subsets = [s["name"] for s in rules[host]["spec"]["subsets"]]
        assert all(s["labels"] == {"version": s["name"]} for s in rules[host]["spec"]["subsets"])
        assert set(subsets) <= set(versions) and default in subsets, (name, subsets)
        for route in vs["spec"]["http"]:
            (destination,) = route["route"]
            assert destination["destination"]["host"] == host
            for match in route.get("match", []):
                assert set(match) == {"headers"} and set(match["headers"]) == {tag}, (
                    f"{name}/{route['name']}: the sidecar writes {tag}; match only on it")
                assert set(match["headers"][tag]) == {"exact"}
        assert "match" not in vs["spec"]["http"][-1], f"{name}: the last route must catch all"
        for version in versions:
            expected = version if version in subsets else default
            assert _route_for(vs, tag, version) == expected, (
                f"{name}: a {version} call goes to {_route_for(vs, tag, version)}, expected {expected}")
        assert _route_for(vs, tag, None) == default
    # The folder shows a service missing a version and one with a single version.
    assert [s["name"] for s in rules["payment"]["spec"]["subsets"]] == ["v1", "v2"]
    assert [s["name"] for s in rules["catalog"]["spec"]["subsets"]] == ["v1"]


# ---------------------------------------------------------------- real Envoy

def _sidecar_bootstrap(http_filter: dict, config: dict) -> dict:
    """A sidecar's two listeners, INBOUND and OUTBOUND, both with the plugin's filter."""
    versions = config["versions"]
    outbound_routes = tag_routes(config.get("tag_header", "x-canary-version"), versions, "",
                                 config["default_version"])
    inbound_routes = [{"match": {"prefix": "/"}, "route": {"cluster": versions[0]}}]
    return {"static_resources": {
        "listeners": [
            http_listener("inbound", 18180, [copy.deepcopy(http_filter)], inbound_routes, "INBOUND"),
            http_listener("outbound", 18179, [copy.deepcopy(http_filter)], outbound_routes, "OUTBOUND")],
        "clusters": version_clusters(versions, 18181)}}


@pytest.mark.parametrize("folder,plugin,config_name,patch,namespace", SIDECAR_RECIPES, ids=IDS)
def test_sidecar_wasmplugin_validates_in_envoy(folder, plugin, config_name, patch, namespace, tmp_path):
    """The filter istiod renders from the sidecar WasmPlugin, on an inbound and an outbound
    listener, passes `envoy --mode validate` with the real module (which runs the
    module's configuration check)."""
    (doc,) = docs(ENVOYFILTER / folder / plugin)
    http_filter = wasm_filter_from_wasmplugin(doc, require_wasm())
    accepted, output = run_validate(_sidecar_bootstrap(http_filter, doc["spec"]["pluginConfig"]), tmp_path)
    assert accepted, f"envoy --mode validate rejected {rel(ENVOYFILTER / folder / plugin)}:\n{output[-4000:]}"


def test_sidecar_validation_has_teeth(tmp_path):
    """A gateway-only field in a sidecar config fails validation, naming its path."""
    (doc,) = docs(ENVOYFILTER / "sidecar" / "wasmplugin.yaml")
    doc = copy.deepcopy(doc)
    doc["spec"]["pluginConfig"]["rules"] = [{"name": "r", "version": "v2"}]
    http_filter = wasm_filter_from_wasmplugin(doc, require_wasm())
    accepted, output = run_validate(_sidecar_bootstrap(http_filter, doc["spec"]["pluginConfig"]), tmp_path)
    assert not accepted, "a sidecar config with rules passed envoy --mode validate"
    assert "rules: " in output, output[-3000:]
