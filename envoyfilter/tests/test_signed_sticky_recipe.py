"""envoyfilter/signed-sticky: the signing keys travel Secret -> gateway proxy environment ->
Wasm VM under one variable name, and the filter accepts the recipe only with them.

What a mismatch would cost on a cluster: a WasmPlugin passing another variable than the
plugin config reads, or a deployment patch filling another one, and the gateway refuses
the configuration; a key written into the WasmPlugin, readable by anyone who may list
Istio resources.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import secrets
import subprocess

import yaml

from recipes import ENVOYFILTER, REPO_ROOT, docs, envoyfilter_wasm_config, plugin_config, require_envoy, require_wasm
from test_envoy_validate import VALIDATE_TIMEOUT_S, gateway_bootstrap, wasm_filter_from_wasmplugin

FOLDER = "signed-sticky"
CLI = REPO_ROOT / "target" / "debug" / "canary-tagger"


def keys_env() -> str:
    return plugin_config(FOLDER)["sticky_cookie"]["signing"]["keys_env"]


def wasmplugin() -> dict:
    (doc,) = docs(ENVOYFILTER / FOLDER / "wasmplugin.yaml")
    return doc


def envoyfilter() -> dict:
    (doc,) = docs(ENVOYFILTER / FOLDER / "envoyfilter.yaml")
    return doc


def test_the_folder_is_complete_and_listed():
    for name in ["README.md", "plugin-config.json", "wasmplugin.yaml", "envoyfilter.yaml",
                 "secret.yaml", "ingressgateway-keys-patch.yaml"]:
        assert (ENVOYFILTER / FOLDER / name).is_file(), f"envoyfilter/{FOLDER}/{name} is missing"
    assert f"[{FOLDER}/]({FOLDER}/)" in (ENVOYFILTER / "README.md").read_text()


def test_both_manifests_carry_the_plugin_config():
    assert wasmplugin()["spec"]["pluginConfig"] == plugin_config(FOLDER)
    configuration = envoyfilter_wasm_config(envoyfilter())["configuration"]
    text = (ENVOYFILTER / FOLDER / "plugin-config.json").read_text(encoding="utf-8")
    assert configuration["value"] == text


def test_one_variable_name_from_secret_to_vm_and_no_key_in_a_manifest():
    name = keys_env()
    # WasmPlugin: passed from the proxy's environment, never given a value here.
    assert wasmplugin()["spec"]["vmConfig"] == {"env": [{"name": name, "valueFrom": "HOST"}]}
    # EnvoyFilter: the same, in Envoy's words.
    vm_config = envoyfilter_wasm_config(envoyfilter())["vm_config"]
    assert vm_config["environment_variables"] == {"host_env_keys": [name]}
    # The deployment patch fills it from the Secret.
    (patch,) = docs(ENVOYFILTER / FOLDER / "ingressgateway-keys-patch.yaml")
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "istio-proxy"
    (env,) = container["env"]
    (secret,) = docs(ENVOYFILTER / FOLDER / "secret.yaml")
    assert (secret["kind"], secret["metadata"]) == (
        "Secret", {"name": "canary-tagger-sticky-keys", "namespace": "istio-system"})
    assert env == {"name": name, "valueFrom": {"secretKeyRef": {
        "name": secret["metadata"]["name"], "key": name}}}
    assert list(secret["stringData"]) == [name]


def _cli(args: list[str], env_value: str | None) -> subprocess.CompletedProcess:
    if not CLI.is_file():
        subprocess.run(["cargo", "build", "-q", "--bin", "canary-tagger"], cwd=REPO_ROOT, check=True,
                       timeout=600)
    env = {k: v for k, v in os.environ.items() if k != keys_env()}
    if env_value is not None:
        env[keys_env()] = env_value
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env, timeout=60,
                          check=False)


def test_the_cli_accepts_the_recipe_with_keys_and_refuses_the_placeholder():
    wasm = str(ENVOYFILTER / FOLDER / "wasmplugin.yaml")
    key = f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    ok = _cli(["validate", wasm, str(ENVOYFILTER / FOLDER / "envoyfilter.yaml")], key)
    assert ok.returncode == 0, ok.stderr
    (secret,) = docs(ENVOYFILTER / FOLDER / "secret.yaml")
    placeholder = _cli(["validate", wasm], secret["stringData"][keys_env()])
    assert placeholder.returncode == 1
    assert (f"spec.pluginConfig.sticky_cookie.signing.keys_env: environment variable {keys_env()}: "
            "entry 1 is not KID:BASE64") in placeholder.stderr, placeholder.stderr


def _validate(bootstrap: dict, tmp_path, env_value: str | None) -> tuple[bool, str]:
    config = tmp_path / "bootstrap.yaml"
    config.write_text(yaml.safe_dump(bootstrap, sort_keys=False), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != keys_env()}
    if env_value is not None:
        env[keys_env()] = env_value
    proc = subprocess.run([str(require_envoy()), "--mode", "validate", "-c", str(config),
                           "--log-level", "info"], capture_output=True, text=True, env=env,
                          timeout=VALIDATE_TIMEOUT_S, check=False)
    output = proc.stdout + proc.stderr
    return proc.returncode == 0 and "OK" in output, output


def _bootstraps() -> dict[str, dict]:
    module = require_wasm()
    config = plugin_config(FOLDER)
    from_wasmplugin = wasm_filter_from_wasmplugin(wasmplugin(), module)
    # What istiod adds for vmConfig.env entries with valueFrom: HOST.
    from_wasmplugin["typed_config"]["config"]["vm_config"]["environment_variables"] = {
        "host_env_keys": [e["name"] for e in wasmplugin()["spec"]["vmConfig"]["env"]
                          if e["valueFrom"] == "HOST"]}
    (patch,) = envoyfilter()["spec"]["configPatches"]
    from_envoyfilter = copy.deepcopy(patch["patch"]["value"])
    from_envoyfilter["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = str(module)
    return {name: gateway_bootstrap(http_filter, config["versions"], config["tag_header"],
                                    config["default_version"])
            for name, http_filter in [("wasmplugin", from_wasmplugin), ("envoyfilter", from_envoyfilter)]}


def test_envoy_loads_both_with_the_keys_in_its_environment_and_refuses_them_without(tmp_path):
    key = f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    for name, bootstrap in _bootstraps().items():
        accepted, output = _validate(bootstrap, tmp_path, key)
        assert accepted, f"{name} with the keys:\n{output[-4000:]}"
        accepted, output = _validate(bootstrap, tmp_path, None)
        assert not accepted, f"{name} loaded without the keys"
        reason = (f"sticky_cookie.signing.keys_env: environment variable {keys_env()} is not set "
                  "in the Wasm VM")
        assert reason in output, output[-4000:]
        assert json.dumps(key) not in output and key not in output
