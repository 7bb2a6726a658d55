"""Every Envoy configuration in the recipes passes the real Envoy's `--mode validate`.

Validate mode builds the whole filter chain, which for a Wasm filter means loading the
module into V8 and calling its on_configure with the plugin config: so these checks
prove the module and each shipped config start together, not only that the YAML has the
right shape (test_validation_has_teeth shows a rejected config fails here).

Checked: the HTTP filter each EnvoyFilter inserts, the filter each WasmPlugin becomes
(translated the way istiod does: pluginConfig as a JSON StringValue, module as a local
file once istio-agent has fetched it), the rollout steps, the Lua filter grpc-normalize
replaces, and compose/envoy.yaml. Module paths inside the gateway pod are pointed at
dist/canary_tagger.wasm.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from recipes import (ENVOYFILTER, SCENARIOS, docs, plugin_config, rel, require_envoy,
                     require_wasm)
from canary_e2e.envoy_process import http_listener, static_cluster, tag_routes

VALIDATE_TIMEOUT_S = 120


def run_validate(bootstrap: dict, tmp_path: Path) -> tuple[bool, str]:
    config = tmp_path / "bootstrap.yaml"
    config.write_text(yaml.safe_dump(bootstrap, sort_keys=False), encoding="utf-8")
    proc = subprocess.run(
        [str(require_envoy()), "--mode", "validate", "-c", str(config), "--log-level", "info"],
        capture_output=True, text=True, timeout=VALIDATE_TIMEOUT_S, check=False)
    output = proc.stdout + proc.stderr
    return proc.returncode == 0 and "OK" in output, output


def assert_valid(bootstrap: dict, tmp_path: Path, what: str) -> None:
    accepted, output = run_validate(bootstrap, tmp_path)
    assert accepted, f"envoy --mode validate rejected {what}:\n{output[-4000:]}"


def gateway_bootstrap(http_filter: dict, versions: list[str], tag_header: str,
                      default_version: str, port: int = 18080) -> dict:
    """One listener like istio-ingressgateway's: [filter, router], routes on the tag."""
    routes = tag_routes(tag_header, versions, "", default_version)
    return {"static_resources": {
        "listeners": [http_listener(f"gateway-{port}", port, [copy.deepcopy(http_filter)], routes)],
        "clusters": version_clusters(versions, port + 1),
    }}


def version_clusters(versions: list[str], first_port: int) -> list[dict]:
    """One loopback cluster per version, named after it, on consecutive ports."""
    return [static_cluster(v, first_port + i) for i, v in enumerate(versions)]


def wasm_filter_from_wasmplugin(doc: dict, module: Path) -> dict:
    """The Envoy filter istiod builds from a WasmPlugin (module already fetched)."""
    spec = doc["spec"]
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": f"{doc['metadata']['namespace']}.{doc['metadata']['name']}",
                "root_id": spec.get("pluginName", ""),
                "fail_open": spec.get("failStrategy") == "FAIL_OPEN",
                "vm_config": {"runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": str(module)}}},
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": json.dumps(spec["pluginConfig"]),
                },
            },
        },
    }


def config_filter(config: dict, module: Path) -> dict:
    """The filter a WasmPlugin carrying `config` becomes."""
    wasm = {"metadata": {"name": "canary-tagger", "namespace": "istio-system"},
            "spec": {"pluginName": "canary-tagger", "failStrategy": "FAIL_OPEN",
                     "pluginConfig": config}}
    return wasm_filter_from_wasmplugin(wasm, module)


def config_bootstrap(config: dict, module: Path) -> dict:
    return gateway_bootstrap(config_filter(config, module), config["versions"],
                             config.get("tag_header", "x-canary-version"),
                             config["default_version"])


# ---------------------------------------------------------------- the gateway filters
# Loading the module into V8 takes seconds, so every gateway filter is validated in ONE
# Envoy run (one listener each; the compiled module is shared). Only when that run fails
# does each check validate its own filter alone, to name the culprit.

def _envoyfilter_item(folder: str, module: Path) -> tuple:
    (doc,) = docs(ENVOYFILTER / folder / "envoyfilter.yaml")
    (patch,) = doc["spec"]["configPatches"]
    http_filter = copy.deepcopy(patch["patch"]["value"])
    http_filter["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = str(module)
    return http_filter, plugin_config(folder)


def _wasmplugin_item(path: Path, module: Path) -> tuple:
    (doc,) = docs(path)
    return wasm_filter_from_wasmplugin(doc, module), doc["spec"]["pluginConfig"]


def _rollout_item(path: Path, module: Path) -> tuple:
    config = json.loads(path.read_text(encoding="utf-8"))
    return config_filter(config, module), config


def _lua_item(_: Path, __: Path) -> tuple:
    (doc,) = docs(ENVOYFILTER / "grpc-normalize" / "lua-envoyfilter.yaml")
    (patch,) = doc["spec"]["configPatches"]
    return patch["patch"]["value"], {"versions": ["v1", "v2", "v3", "v4"],
                                     "tag_header": "grpcsvc", "default_version": "v1"}


ITEMS = (
    [pytest.param(_envoyfilter_item, folder, id=f"{folder}/envoyfilter.yaml")
     for folder in SCENARIOS]
    + [pytest.param(_wasmplugin_item, ENVOYFILTER / folder / name, id=f"{folder}/{name}")
       for folder in SCENARIOS for name in ("wasmplugin.yaml", "wasmplugin-file.yaml")]
    + [pytest.param(_rollout_item, path, id=rel(path).removeprefix("envoyfilter/"))
       for path in sorted(ENVOYFILTER.glob("*/rollout/*.json"))]
    + [pytest.param(_lua_item, None, id="grpc-normalize/lua-envoyfilter.yaml (replaced Lua)")]
)


def _bootstrap_for(items: list[tuple]) -> dict:
    """One listener per (http_filter, plugin config), clusters for every version named."""
    bootstrap = None
    for index, (http_filter, config) in enumerate(items):
        single = gateway_bootstrap(http_filter, config["versions"],
                                   config.get("tag_header", "x-canary-version"),
                                   config["default_version"], port=19000 + index)
        if bootstrap is None:
            bootstrap = single
            continue
        resources = bootstrap["static_resources"]
        resources["listeners"] += single["static_resources"]["listeners"]
        known = {c["name"] for c in resources["clusters"]}
        resources["clusters"] += [c for c in single["static_resources"]["clusters"]
                                  if c["name"] not in known]
    return bootstrap


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Every ITEM in one envoy --mode validate run: (accepted, output)."""
    module = require_wasm()
    items = [param.values[0](param.values[1], module) for param in ITEMS]
    for index, (http_filter, _) in enumerate(items):
        if "config" in http_filter.get("typed_config", {}):
            # A distinct plugin name per listener, so Envoy's error names the culprit.
            http_filter["typed_config"]["config"]["name"] = ITEMS[index].id
    return run_validate(_bootstrap_for(items), tmp_path_factory.mktemp("batch"))


@pytest.mark.parametrize("make_item,source", ITEMS)
def test_gateway_filter_validates(make_item, source, batch, tmp_path):
    accepted, output = batch
    if accepted:
        return
    # The batch failed: validate this filter alone to say whether it is the one.
    http_filter, config = make_item(source, require_wasm())
    assert_valid(_bootstrap_for([(http_filter, config)]), tmp_path,
                 f"this filter (the batch of all gateway filters failed too):\n{output[-2000:]}")


def test_compose_envoy_config_validates(tmp_path):
    module = require_wasm()
    (bootstrap,) = docs(ENVOYFILTER / "compose" / "envoy.yaml")
    bootstrap = copy.deepcopy(bootstrap)
    hcm = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    wasm = hcm["typed_config"]["http_filters"][0]["typed_config"]["config"]
    assert wasm["vm_config"]["code"]["local"]["filename"] == "/etc/envoy/canary_tagger.wasm"
    wasm["vm_config"]["code"]["local"]["filename"] = str(module)
    assert_valid(bootstrap, tmp_path, "compose/envoy.yaml")


def test_validation_has_teeth(tmp_path):
    """A config the engine rejects makes validate fail, naming the JSON path: so the
    passing checks above mean the module accepted each shipped config."""
    module = require_wasm()
    broken = plugin_config("weather")
    ramp = next(r for r in broken["rules"] if r["name"] == "ramp")
    ramp["split"]["weights"][1]["percent"] = 80  # 10 + 80 = 90
    accepted, output = run_validate(config_bootstrap(broken, module), tmp_path)
    assert not accepted, "a config whose split sums to 90 passed envoy --mode validate"
    assert "rules[3].split.weights" in output, output[-3000:]
