"""Each folder agrees with itself: the plugin config, its copies in the WasmPlugin and the
EnvoyFilter, and the routing objects that act on the tag it writes.

What a mismatch would cost on a cluster: a VirtualService matching a header the filter
does not write (nobody reaches the canary), a version without a subset (503 NR), a
WasmPlugin whose pluginConfig drifted from the file a reviewer read, a file:// path the
volume patch does not mount (module not found), a Flagger match on a value never tagged.
"""

from __future__ import annotations

import json
import re

import pytest

from recipes import (ENVOYFILTER, GATEWAY_WASM_PATH, ROUTED_SCENARIOS, SCENARIOS, docs,
                     envoyfilter_wasm_config, folder_docs, kinds, plugin_config)

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def wasmplugins(folder):
    """{"oci": doc, "file": doc} from wasmplugin.yaml and wasmplugin-file.yaml."""
    (oci,) = docs(ENVOYFILTER / folder / "wasmplugin.yaml")
    (file,) = docs(ENVOYFILTER / folder / "wasmplugin-file.yaml")
    return {"oci": oci, "file": file}


# ---------------------------------------------------------------- the config and its copies

@pytest.mark.parametrize("folder", SCENARIOS)
def test_wasmplugin_carries_the_plugin_config(folder):
    config = plugin_config(folder)
    for variant, doc in wasmplugins(folder).items():
        assert doc["spec"]["pluginConfig"] == config, (
            f"{folder}/wasmplugin{'' if variant == 'oci' else '-file'}.yaml: pluginConfig "
            f"differs from plugin-config.json")


@pytest.mark.parametrize("folder", SCENARIOS)
def test_envoyfilter_carries_the_plugin_config(folder):
    (doc,) = docs(ENVOYFILTER / folder / "envoyfilter.yaml")
    configuration = envoyfilter_wasm_config(doc)["configuration"]
    assert configuration["@type"] == "type.googleapis.com/google.protobuf.StringValue"
    text = (ENVOYFILTER / folder / "plugin-config.json").read_text(encoding="utf-8")
    assert configuration["value"] == text, f"{folder}/envoyfilter.yaml: not plugin-config.json verbatim"
    assert json.loads(configuration["value"]) == plugin_config(folder)


def test_compose_envoy_carries_the_plugin_config():
    (bootstrap,) = docs(ENVOYFILTER / "compose" / "envoy.yaml")
    (listener,) = bootstrap["static_resources"]["listeners"]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    wasm = hcm["http_filters"][0]["typed_config"]["config"]
    text = (ENVOYFILTER / "compose" / "plugin-config.json").read_text(encoding="utf-8")
    assert wasm["configuration"]["value"] == text
    assert hcm["http_filters"][-1]["name"] == "envoy.filters.http.router"


# ---------------------------------------------------------------- WasmPlugin settings

@pytest.mark.parametrize("folder", SCENARIOS)
def test_wasmplugin_settings(folder):
    for variant, doc in wasmplugins(folder).items():
        spec = doc["spec"]
        assert doc["metadata"] == {"name": "canary-tagger", "namespace": "istio-system"}
        assert spec["selector"] == {"matchLabels": {"istio": "ingressgateway"}}
        # Istio: on a gateway the traffic selector mode must be CLIENT (or CLIENT_AND_SERVER).
        assert spec["match"] == [{"mode": "CLIENT"}]
        assert spec["phase"] == "AUTHZ" and isinstance(spec["priority"], int)
        assert spec["failStrategy"] in ("FAIL_OPEN", "FAIL_CLOSE")
        assert spec["pluginName"] == "canary-tagger"
        assert spec["sha256"] == "" or HEX64.match(spec["sha256"]), spec["sha256"]
        if variant == "oci":
            assert spec["url"] == "oci://ghcr.io/OWNER/canary-tagger:0.1.0"
            assert spec["imagePullPolicy"] == "IfNotPresent"
        else:
            assert spec["url"] == f"file://{GATEWAY_WASM_PATH}"
            assert "imagePullPolicy" not in spec


@pytest.mark.parametrize("folder", SCENARIOS)
def test_legacy_envoyfilter_settings(folder):
    (doc,) = docs(ENVOYFILTER / folder / "envoyfilter.yaml")
    assert doc["metadata"] == {"name": "canary-tagger", "namespace": "istio-system"}
    assert doc["spec"]["workloadSelector"] == {"labels": {"istio": "ingressgateway"}}
    (patch,) = doc["spec"]["configPatches"]
    assert patch["applyTo"] == "HTTP_FILTER"
    assert patch["match"]["context"] == "GATEWAY"
    chain_filter = patch["match"]["listener"]["filterChain"]["filter"]
    assert chain_filter["name"] == "envoy.filters.network.http_connection_manager"
    assert chain_filter["subFilter"]["name"] == "envoy.filters.http.router"
    assert patch["patch"]["operation"] == "INSERT_BEFORE"
    value = patch["patch"]["value"]
    assert value["name"] == "envoy.filters.http.wasm"
    assert value["typed_config"]["@type"] == \
        "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
    config = value["typed_config"]["config"]
    assert config["vm_config"]["runtime"] == "envoy.wasm.runtime.v8"
    assert config["vm_config"]["code"] == {"local": {"filename": GATEWAY_WASM_PATH}}
    # Same failure trade-off as the WasmPlugin beside it.
    fail_strategy = wasmplugins(folder)["oci"]["spec"]["failStrategy"]
    assert config["fail_open"] is (fail_strategy == "FAIL_OPEN")


def test_volume_patch_mounts_where_the_manifests_look():
    first = (ENVOYFILTER / "grpc-normalize" / "gateway-wasm-volume.yaml").read_text()
    for folder in SCENARIOS:
        # One patch, copied into each folder so that a folder stands alone: keep them equal.
        assert (ENVOYFILTER / folder / "gateway-wasm-volume.yaml").read_text() == first, folder
    (patch,) = docs(ENVOYFILTER / "grpc-normalize" / "gateway-wasm-volume.yaml")
    pod = patch["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["name"] == "istio-proxy"
    (mount,) = container["volumeMounts"]
    (volume,) = pod["volumes"]
    assert mount["name"] == volume["name"] and mount["readOnly"] is True
    assert f"{mount['mountPath']}/canary_tagger.wasm" == GATEWAY_WASM_PATH
    config_map = volume["configMap"]["name"]
    # The ConfigMap the comment tells people to create, with the file name Envoy opens.
    assert f"create configmap {config_map}" in first
    assert "--from-file=canary_tagger.wasm=" in first


# ---------------------------------------------------------------- routing vs. plugin config

def _tag_value(match: dict, tag_header: str):
    """The version a VirtualService match selects through the tag, or None."""
    condition = match.get("headers", {}).get(tag_header)
    if condition is None:
        return None
    assert set(condition) == {"exact"}, f"tag header matched with {condition}: use exact"
    return condition["exact"]


def _routes(folder, tag_header):
    """(VirtualService, http route, versions its matches select) for every route."""
    for vs in kinds(folder, "VirtualService"):
        for route in vs["spec"]["http"]:
            selected = set()
            for match in route.get("match", []):
                assert set(match) & {"headers", "sourceLabels"}, match
                headers = set(match.get("headers", {}))
                assert headers <= {tag_header, "baggage"}, (
                    f"{vs['metadata']['name']}/{route['name']}: matches {headers}; the "
                    f"plugin writes {tag_header}")
                value = _tag_value(match, tag_header)
                if value is not None:
                    selected.add(value)
                if "sourceLabels" in match:
                    selected.add(match["sourceLabels"]["version"])
                if "baggage" in match.get("headers", {}):
                    regex = match["headers"]["baggage"]["regex"]
                    selected |= set(re.findall(r"canary-version=(\w+)", regex))
            yield vs, route, selected


def _destination_rules(folder):
    return {(dr["metadata"]["namespace"], dr["spec"]["host"]): dr
            for dr in kinds(folder, "DestinationRule")}


@pytest.mark.parametrize("folder", ROUTED_SCENARIOS)
def test_routes_follow_the_tag(folder):
    config = plugin_config(folder)
    tag, versions, default = config["tag_header"], config["versions"], config["default_version"]
    rules = _destination_rules(folder)
    per_host: dict = {}
    for vs, route, selected in _routes(folder, tag):
        name = f"{folder}: VirtualService {vs['metadata']['name']} route {route.get('name')}"
        assert selected <= set(versions), f"{name} selects unknown versions {selected - set(versions)}"
        assert len(selected) <= 1, f"{name} mixes versions {selected}"
        (destination,) = route["route"]
        host, subset = destination["destination"]["host"], destination["destination"]["subset"]
        expected = next(iter(selected)) if selected else default
        assert subset == expected, f"{name} sends {selected or 'untagged'} traffic to {subset}"
        dr = rules.get((vs["metadata"]["namespace"], host))
        assert dr, f"{name}: no DestinationRule for host {host}"
        assert subset in [s["name"] for s in dr["spec"]["subsets"]], f"{name}: no subset {subset}"
        per_host.setdefault((vs["metadata"]["name"], host), []).append((route, selected))
    assert per_host, f"{folder}: no VirtualService routes"
    for (vs_name, host), routes in per_host.items():
        reached = set().union(*(selected for _, selected in routes))
        # Every non-default version has its own route; the default one is the catch-all.
        assert set(versions) - {default} <= reached, (
            f"{vs_name}: no route for {set(versions) - {default} - reached}")
        last, selected = routes[-1]
        assert "match" not in last and not selected, f"{vs_name}: the last route must catch all"


@pytest.mark.parametrize("folder", ROUTED_SCENARIOS)
def test_every_version_has_a_subset(folder):
    versions = plugin_config(folder)["versions"]
    rules = kinds(folder, "DestinationRule")
    assert rules
    for dr in rules:
        subsets = dr["spec"]["subsets"]
        assert [s["name"] for s in subsets] == versions, dr["metadata"]["name"]
        for subset in subsets:
            assert subset["labels"] == {"version": subset["name"]}


@pytest.mark.parametrize("folder", SCENARIOS)
def test_gateway_and_virtualservices_meet(folder):
    (gateway,) = kinds(folder, "Gateway")
    assert gateway["spec"]["selector"] == {"istio": "ingressgateway"}
    gateway_ref = f"{gateway['metadata']['namespace']}/{gateway['metadata']['name']}"
    hosts = {h for server in gateway["spec"]["servers"] for h in server["hosts"]}
    bound = [vs for vs in kinds(folder, "VirtualService") if vs["spec"].get("gateways")]
    if folder == "flagger":
        (canary,) = kinds(folder, "Canary")
        assert canary["spec"]["service"]["gateways"] == [gateway_ref]
        assert set(canary["spec"]["service"]["hosts"]) <= hosts
        return
    assert bound, f"{folder}: no VirtualService bound to the gateway"
    for vs in bound:
        refs = {ref if "/" in ref else f"{vs['metadata']['namespace']}/{ref}"
                for ref in vs["spec"]["gateways"]}
        assert refs == {gateway_ref}
        assert set(vs["spec"]["hosts"]) <= hosts or hosts == {"*"}


# ---------------------------------------------------------------- per scenario

def test_grpc_normalize_matches_the_lua_it_replaces():
    config = plugin_config("grpc-normalize")
    (normalize,) = config["normalize"]
    assert normalize["header"] == "grpcsvc" and normalize["default"] == "v1"
    assert normalize["allowed"] == config["versions"] == ["v1", "v2", "v3", "v4"]
    assert normalize["when"] == {"header": "content-type", "contains": "grpc"}
    (lua,) = docs(ENVOYFILTER / "grpc-normalize" / "lua-envoyfilter.yaml")
    (patch,) = lua["spec"]["configPatches"]
    assert patch["match"]["context"] == "GATEWAY" and patch["patch"]["operation"] == "INSERT_BEFORE"
    code = patch["patch"]["value"]["typed_config"]["default_source_code"]["inline_string"]
    assert sorted(re.findall(r"(v\d) = true", code)) == normalize["allowed"]
    assert '"grpc"' in code and 'headers:replace("grpcsvc", "v1")' in code
    (rule,) = config["rules"]
    assert rule["version_from"] == "header:grpcsvc"


def _canary_percent(config, rule_name, canary):
    (rule,) = [r for r in config["rules"] if r["name"] == rule_name]
    weights = rule["split"]["weights"]
    # The canary is listed first, so raising its percent only moves users into it.
    assert weights[0]["version"] == canary
    return weights[0]["percent"]


def _without(config, rule_name):
    return {**config, "rules": [r for r in config["rules"] if r["name"] != rule_name]}


@pytest.mark.parametrize("folder,rule,steps", [
    ("weather", "ramp", ["plugin-config.json", "rollout/ramp-50.json", "rollout/ramp-100.json"]),
    ("mirror", "shift", ["rollout/shift-20.json", "rollout/shift-100.json"]),
])
def test_rollout_steps_only_grow_the_canary(folder, rule, steps):
    configs = [json.loads((ENVOYFILTER / folder / step).read_text()) for step in steps]
    percents = [_canary_percent(c, rule, "v2") for c in configs]
    assert percents == sorted(percents) and percents[-1] == 100, percents
    for config in configs[1:]:
        # Same salt (rule name) and key at every step, nothing else changed: users keep
        # their bucket, so nobody on v2 moves back.
        (first,) = [r for r in configs[0]["rules"] if r["name"] == rule]
        (this,) = [r for r in config["rules"] if r["name"] == rule]
        assert this.get("split", {}).get("key") == first.get("split", {}).get("key")
        assert this["split"].get("salt") == first["split"].get("salt")
        assert _without(config, rule) == _without(configs[0], rule)


def test_mirror_steps():
    base = plugin_config("mirror")
    shift = json.loads((ENVOYFILTER / "mirror" / "rollout" / "shift-20.json").read_text())
    assert _without(shift, "shift") == base  # step 2 only adds the split
    (step1,) = docs(ENVOYFILTER / "mirror" / "virtualservice.yaml")
    (step2,) = docs(ENVOYFILTER / "mirror" / "rollout" / "virtualservice-shift.yaml")
    default = step1["spec"]["http"][-1]
    assert default["route"][0]["destination"]["subset"] == "v1"
    assert default["mirror"] == {"host": "reviews", "subset": "v2"}
    assert default["mirrorPercentage"] == {"value": 100}
    # Step 2 is step 1 without the mirror.
    without_mirror = {k: v for k, v in default.items() if k not in ("mirror", "mirrorPercentage")}
    assert step2["spec"]["http"][:-1] == step1["spec"]["http"][:-1]
    assert step2["spec"]["http"][-1] == without_mirror
    assert step2["metadata"] == step1["metadata"]


def test_mqtt_client_ip_and_response_header():
    config = plugin_config("mqtt")
    assert config["client_ip"]["from"] == "xff"
    (topology,) = docs(ENVOYFILTER / "mqtt" / "ingressgateway-topology-patch.yaml")
    proxy_config = json.loads(
        topology["spec"]["template"]["metadata"]["annotations"]["proxy.istio.io/config"])
    # Envoy and the filter must skip the same number of x-forwarded-for entries.
    assert proxy_config["gatewayTopology"]["numTrustedProxies"] == config["client_ip"]["trusted_hops"]
    (service,) = docs(ENVOYFILTER / "mqtt" / "ingressgateway-service-patch.yaml")
    assert service == {"spec": {"externalTrafficPolicy": "Local"}}
    (office,) = [r for r in config["rules"] if r["name"] == "office"]
    assert office["match"]["source_ip"] == ["192.168.0.58/32"] and office["version"] == "v2"
    assert config["response_header"] == "user"
    (gateway,) = kinds("mqtt", "Gateway")
    assert gateway["metadata"]["name"] == "bookinfo"
    (backend,) = [vs for vs in kinds("mqtt", "VirtualService")
                  if vs["metadata"]["name"] == "mqtt-server-internal"]
    for route in backend["spec"]["http"]:
        (destination,) = route["route"]
        assert destination["headers"]["response"]["add"] == {
            "user": destination["destination"]["subset"]}
        for match in route.get("match", []):
            if "sourceLabels" in match:
                assert match["sourceLabels"] == {"version": destination["destination"]["subset"]}


def test_weather_seed_names():
    names = {vs["metadata"]["name"] for vs in kinds("weather", "VirtualService")}
    assert names == {"frontend-route", "forecast-route"}
    assert {d["metadata"]["namespace"] for _, d in folder_docs("weather")
            if d.get("kind") in ("Gateway", "VirtualService", "DestinationRule")} == {"weather"}
    rules = {r["name"]: r for r in plugin_config("weather")["rules"]}
    assert rules["chrome"]["match"] == {"header": "user-agent", "regex": ".*Chrome.*"}
    assert rules["testers"]["match"] == {"cookie": "user", "exact": "tester"}
    android = rules["android-half"]["split"]["weights"]
    assert sorted(w["percent"] for w in android) == [50, 50]
    # Android's Chrome says "Chrome" too: the Android split must come before the Chrome rule.
    order = [r["name"] for r in plugin_config("weather")["rules"]]
    assert order.index("android-half") < order.index("chrome")
    assert plugin_config("weather").get("sticky_cookie"), "the Android split must be sticky"


def test_flagger_matches_on_the_tag():
    config = plugin_config("flagger")
    (canary,) = kinds("flagger", "Canary")
    analysis = canary["spec"]["analysis"]
    assert (analysis["interval"], analysis["threshold"], analysis["maxWeight"],
            analysis["stepWeight"]) == ("1m", 5, 50, 10)
    (match,) = analysis["match"]
    assert list(match["headers"]) == [config["tag_header"]]
    value = match["headers"][config["tag_header"]]["exact"]
    assert value in config["versions"] and value != config["default_version"]
    metrics = {m["name"]: m for m in analysis["metrics"]}
    assert metrics["request-success-rate"]["thresholdRange"] == {"min": 99}
    assert metrics["request-duration"]["thresholdRange"] == {"max": 500}
    # Every template is used, under its own name, and every templateRef has its template.
    templates = {(t["metadata"]["name"], t["metadata"]["namespace"]) for t in kinds("flagger", "MetricTemplate")}
    refs = {(m["templateRef"]["name"], m["templateRef"]["namespace"])
            for m in analysis["metrics"] if "templateRef" in m}
    assert refs == templates
    assert all(m["name"] == m["templateRef"]["name"] for m in analysis["metrics"] if "templateRef" in m)
    assert metrics["not-found-percentage"]["thresholdRange"] == {"max": 5}
    # canary-tagger's gates: the tagged share is the tagged version's, nothing rejected.
    assert metrics["canary-tagged-share"]["thresholdRange"] == {"min": 5}
    (share,) = [t for t in kinds("flagger", "MetricTemplate") if t["metadata"]["name"] == "canary-tagged-share"]
    assert f'version="{value}"' in share["spec"]["query"]
    assert metrics["canary-tagger-config-rejected"]["thresholdRange"] == {"max": 0}
    hooks = {h["name"]: h for h in analysis["webhooks"]}
    assert hooks["acceptance-test"]["type"] == "pre-rollout"
    # The load test goes through the gateway as a tester, so it is tagged into the match.
    testers = next(r for r in config["rules"] if r["name"] == "testers")
    assert testers["version"] == value
    assert "Cookie: user=tester" in hooks["load-test"]["metadata"]["cmd"]
    assert not kinds("flagger", "VirtualService") and not kinds("flagger", "DestinationRule")
