"""envoyfilter/gateway-api/ and envoyfilter/ambient/: the weather scenario on the Gateway
API. The manifests `canary-tagger render` writes are committed as rendered, and kept so."""

from __future__ import annotations

import pytest

import subprocess

from recipes import CLI, ENVOYFILTER, REPO_ROOT, docs, plugin_config, render, render_text

WEATHER = "envoyfilter/weather/plugin-config.json"
FRONTEND = ["--api", "gateway-api", "--gateway", "weather-gateway", "--service", "frontend",
            "--namespace", "weather", "--host", "weather.example.com"]
FORECAST = ["--api", "gateway-api", "--gateway", "weather-gateway", "--service", "forecast",
            "--namespace", "weather", "--mesh"]
# The committed render outputs, by file: the flags after FILE (README.md shows each).
RENDERED = {
    "gateway-api/frontend.yaml": FRONTEND,
    "ambient/frontend.yaml": [*FRONTEND, "--mesh", "--waypoint", "waypoint"],
}
FOLDERS = ["gateway-api", "ambient"]


def command(flags: list[str]) -> str:
    return " ".join(["canary-tagger render", WEATHER, *flags])


@pytest.mark.parametrize("name", list(RENDERED))
def test_committed_manifest_is_the_render_output(name):
    path = ENVOYFILTER / name
    expected = render_text(WEATHER, *RENDERED[name])
    assert path.read_text(encoding="utf-8") == expected, (
        f"envoyfilter/{name} is stale: regenerate it with\n"
        f"  cargo run -q --bin canary-tagger -- {command(RENDERED[name])[14:]} > envoyfilter/{name}")


@pytest.mark.parametrize("folder", FOLDERS)
def test_forecast_is_the_mesh_part_of_its_render(folder):
    rendered = [doc for doc in render(WEATHER, *FORECAST)
                if doc["kind"] == "Service" or doc["metadata"]["name"] == "forecast-mesh"]
    assert docs(ENVOYFILTER / folder / "forecast.yaml") == rendered


@pytest.mark.parametrize("folder", FOLDERS)
def test_readme_shows_the_render_commands(folder):
    readme = (ENVOYFILTER / folder / "README.md").read_text(encoding="utf-8")
    for name, flags in RENDERED.items():
        if name.startswith(f"{folder}/"):
            shown = " ".join(readme.replace("\\\n", " ").split())
            assert " ".join(command(flags).split()) in shown, f"{folder}/README.md: {name}"


@pytest.mark.parametrize("folder", FOLDERS)
def test_gateway_and_routes_meet(folder):
    assert (ENVOYFILTER / folder / "gateway.yaml").read_text() == \
        (ENVOYFILTER / "gateway-api" / "gateway.yaml").read_text(), "keep the copies equal"
    (gateway,) = docs(ENVOYFILTER / folder / "gateway.yaml")
    assert gateway["spec"]["gatewayClassName"] == "istio"
    (listener,) = gateway["spec"]["listeners"]
    frontend = docs(ENVOYFILTER / folder / "frontend.yaml")
    (route,) = [d for d in frontend if d["kind"] == "HTTPRoute" and d["metadata"]["name"] == "frontend"]
    assert route["spec"]["hostnames"] == [listener["hostname"]]
    (parent,) = route["spec"]["parentRefs"]
    assert parent["name"] == gateway["metadata"]["name"]
    assert route["metadata"]["namespace"] == gateway["metadata"]["namespace"], "allowedRoutes: Same"
    (plugin,) = [d for d in frontend if d["kind"] == "WasmPlugin" and
                 d["spec"]["targetRefs"][0]["name"] == gateway["metadata"]["name"]]
    assert plugin["spec"]["pluginConfig"] == plugin_config("weather")
    assert plugin["metadata"]["namespace"] == gateway["metadata"]["namespace"]


def test_every_backend_is_a_service_of_the_folder():
    for folder in FOLDERS:
        objects = [d for path in sorted((ENVOYFILTER / folder).glob("*.yaml")) for d in docs(path)]
        services = {d["metadata"]["name"]: d for d in objects if d["kind"] == "Service"}
        versions = plugin_config("weather")["versions"]
        for route in (d for d in objects if d["kind"] == "HTTPRoute"):
            for rule in route["spec"]["rules"]:
                for backend in rule["backendRefs"]:
                    service = services[backend["name"]]
                    assert service["spec"]["selector"]["version"] in versions
                    assert backend["port"] in [p["port"] for p in service["spec"]["ports"]]
            for parent in route["spec"]["parentRefs"]:
                if parent["kind"] == "Service" and folder == "ambient":
                    assert parent["name"] in services, f"{folder}: {parent}"


def test_ambient_namespace_waypoint_and_labels():
    (namespace,) = docs(ENVOYFILTER / "ambient" / "namespace.yaml")
    assert namespace["kind"] == "Namespace" and namespace["metadata"]["name"] == "weather"
    labels = namespace["metadata"]["labels"]
    assert labels["istio.io/dataplane-mode"] == "ambient"
    (waypoint,) = docs(ENVOYFILTER / "ambient" / "waypoint.yaml")
    name = waypoint["metadata"]["name"]
    assert labels["istio.io/use-waypoint"] == name
    assert waypoint["spec"]["gatewayClassName"] == "istio-waypoint"
    assert waypoint["spec"]["listeners"] == [{"name": "mesh", "port": 15008, "protocol": "HBONE"}]
    services = {d["metadata"]["name"]: d["metadata"]["labels"]
                for d in docs(ENVOYFILTER / "ambient" / "services.yaml")}
    assert {n: l["istio.io/use-waypoint"] for n, l in services.items()} == {
        "frontend": name, "forecast": name}
    assert services["frontend"]["istio.io/ingress-use-waypoint"] == "true"
    readme = (ENVOYFILTER / "ambient" / "README.md").read_text(encoding="utf-8")
    assert "kubectl label service -n weather frontend-v1 frontend-v2 " \
        "istio.io/ingress-use-waypoint=true" in readme
    (plugin,) = [d for d in docs(ENVOYFILTER / "ambient" / "frontend.yaml")
                 if d["kind"] == "WasmPlugin" and d["spec"]["targetRefs"][0]["name"] == name]
    config = plugin["spec"]["pluginConfig"]
    gateway_config = plugin_config("weather")
    assert config["mode"] == "waypoint"
    for field in ("tag_header", "versions", "default_version"):
        assert config[field] == gateway_config[field], field


@pytest.mark.parametrize("name", list(RENDERED))
def test_every_rendered_plugin_config_compiles(name):
    """The engine's own validation accepts both WasmPlugins' pluginConfig, the waypoint's too."""
    render_text(WEATHER, *RENDERED[name])  # builds the CLI once
    done = subprocess.run([str(CLI), "validate", f"envoyfilter/{name}"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    plugins = [d for d in docs(ENVOYFILTER / name) if d["kind"] == "WasmPlugin"]
    assert done.stdout.count(": ok (") == len(plugins), done.stdout
