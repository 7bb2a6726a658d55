"""The docker-compose demo: the compose file is valid, its pieces fit together, and its
Envoy config with its echo upstreams routes the way the README says.

There is no Docker engine here, so `docker-compose config -q` checks the file (Debian's
docker-compose; when it is not installed that one check is skipped and says so), and the
demo itself runs without containers: the same envoy.yaml and echo.py, with the cluster
addresses pointed at loopback ports instead of the compose service names.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from recipes import ENVOYFILTER, REPO_ROOT, STATS_TAGS, docs, require_envoy, require_wasm

COMPOSE = ENVOYFILTER / "compose"
START_TIMEOUT_S = 60


def compose_file() -> dict:
    (doc,) = docs(COMPOSE / "docker-compose.yaml")
    return doc


def envoy_mounts() -> dict[str, Path]:
    """The envoy service's read-only file mounts: container path -> file here."""
    mounts = {}
    for volume in compose_file()["services"]["envoy"]["volumes"]:
        source, target, mode = volume.rsplit(":", 2)
        assert mode == "ro", volume
        if not source.startswith("${"):
            mounts[target] = (COMPOSE / source).resolve()
    return mounts


def envoy_command(envoy_bin: Path, config: Path) -> list[str]:
    """The compose envoy service's command, run here: its shell line with `$$` as compose
    passes it, the mounted files at their paths here, our Envoy binary."""
    shell, flag, line = compose_file()["services"]["envoy"]["command"]
    line = line.replace("$$", "$").replace("exec envoy ", f"exec {envoy_bin} ", 1)
    for target, source in {**envoy_mounts(), "/etc/envoy/envoy.yaml": config}.items():
        line = line.replace(target, str(source))
    return [shell, flag, f"{line} --disable-hot-restart"]


def test_docker_compose_config_is_valid():
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (Debian package docker-compose; `make "
                    "test` installs it): only the structural checks below ran")
    result = subprocess.run([tool, "-f", str(COMPOSE / "docker-compose.yaml"), "config", "-q"],
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "CANARY_TAGGER_WASM": str(REPO_ROOT / "dist" / "x.wasm")})
    assert result.returncode == 0, result.stderr


def test_compose_services_fit_together():
    services = compose_file()["services"]
    assert set(services) == {"envoy", "v1", "v2", "v3"}
    envoy = services["envoy"]
    assert envoy["image"] == "envoyproxy/envoy:v1.40-latest"
    assert "./envoy.yaml:/etc/envoy/envoy.yaml:ro" in envoy["volumes"]
    (module_mount,) = [v for v in envoy["volumes"] if v.endswith(":/etc/envoy/canary_tagger.wasm:ro")]
    # Default source: the module `make wasm` builds, relative to this folder.
    source = module_mount.split(":/etc/envoy/")[0]
    assert source == "${CANARY_TAGGER_WASM:-../../dist/canary_tagger.wasm}"
    assert (COMPOSE / "../../dist/canary_tagger.wasm").resolve() == REPO_ROOT / "dist" / "canary_tagger.wasm"
    assert set(envoy["depends_on"]) == {"v1", "v2", "v3"}
    # canary-tagger's Prometheus labels: the one stats-tags.yaml, merged by --config-yaml
    # (the demo below runs this very command line).
    assert envoy_mounts()["/etc/envoy/stats-tags.yaml"] == STATS_TAGS
    assert envoy["command"][:2] == ["sh", "-c"]
    assert '--config-yaml "$$(cat /etc/envoy/stats-tags.yaml)"' in envoy["command"][2]

    (bootstrap,) = docs(COMPOSE / "envoy.yaml")
    listener = bootstrap["static_resources"]["listeners"][0]
    port = listener["address"]["socket_address"]["port_value"]
    admin = bootstrap["admin"]["address"]["socket_address"]["port_value"]
    assert {f"{port}:{port}", f"{admin}:{admin}"} <= set(envoy["ports"])
    wasm = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0]
    assert wasm["typed_config"]["config"]["vm_config"] == {
        "vm_id": "canary-tagger", "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": "/etc/envoy/canary_tagger.wasm"}}}

    clusters = {c["name"]: c for c in bootstrap["static_resources"]["clusters"]}
    for version in ("v1", "v2", "v3"):
        service = services[version]
        assert service["environment"] == {"VERSION": version}
        assert "./echo.py:/app/echo.py:ro" in service["volumes"]
        assert service["command"] == ["python", "/app/echo.py"]
        address = clusters[version]["load_assignment"]["endpoints"][0]["lb_endpoints"][0][
            "endpoint"]["address"]["socket_address"]
        assert address == {"address": version, "port_value": 8080}  # echo.py's default PORT


# ---------------------------------------------------------------- the demo, without Docker

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, path: str | None, deadline: float, what: str, proc) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path or "/")
            status = conn.getresponse().status
            conn.close()
            if path is None or status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not answer on port {port} within {START_TIMEOUT_S}s")


def _loopback_bootstrap(module, edge: int, admin: int, echo_ports: dict[str, int]) -> dict:
    """The compose demo's envoy.yaml with loopback ports (edge, admin, an echo per version)
    and the locally built module."""
    (bootstrap,) = docs(COMPOSE / "envoy.yaml")
    bootstrap = copy.deepcopy(bootstrap)
    bootstrap["admin"]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": admin}
    listener = bootstrap["static_resources"]["listeners"][0]
    listener["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": edge}
    wasm = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0]
    wasm["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = str(module)
    for cluster in bootstrap["static_resources"]["clusters"]:
        cluster["type"] = "STATIC"
        address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"][
            "address"]["socket_address"]
        address.update(address="127.0.0.1", port_value=echo_ports[cluster["name"]])
    return bootstrap


def _stop(processes: list[subprocess.Popen]):
    """SIGTERM each process still running, last started first; SIGKILL after 10 s."""
    for proc in reversed(processes):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """envoy.yaml + three echo.py processes on loopback; yields a request function."""
    module = require_wasm()
    envoy_bin = require_envoy()
    workdir = tmp_path_factory.mktemp("compose-demo")
    edge, admin = _free_port(), _free_port()
    echo_ports = {v: _free_port() for v in ("v1", "v2", "v3")}
    config = workdir / "envoy.yaml"
    config.write_text(yaml.safe_dump(_loopback_bootstrap(module, edge, admin, echo_ports), sort_keys=False))

    processes = []
    log = (workdir / "envoy.log").open("w")
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        for version, port in echo_ports.items():
            proc = subprocess.Popen([sys.executable, str(COMPOSE / "echo.py")],
                                    env={**os.environ, "VERSION": version, "PORT": str(port)},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            processes.append(proc)
            _wait_for(port, None, deadline, f"echo.py {version}", proc)
        envoy = subprocess.Popen(envoy_command(envoy_bin, config), stdout=log, stderr=subprocess.STDOUT)
        processes.append(envoy)
        try:
            _wait_for(admin, "/ready", deadline, "envoy", envoy)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{(workdir / 'envoy.log').read_text()[-3000:]}")

        def request(path="/", headers=None):
            conn = http.client.HTTPConnection("127.0.0.1", edge, timeout=10)
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            body = json.loads(response.read())
            result = (response.status, body, response.headers)
            conn.close()
            return result

        def prometheus():
            conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
            conn.request("GET", "/stats/prometheus")
            text = conn.getresponse().read().decode()
            conn.close()
            return text

        request.prometheus = prometheus
        yield request
    finally:
        _stop(processes)
        log.close()


CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"


@pytest.mark.parametrize("path,headers,version", [
    ("/", {}, "v1"),
    ("/", {"cookie": "theme=dark; user=tester; lang=en"}, "v2"),
    ("/", {"user-agent": CHROME}, "v2"),
    ("/?beta=3", {}, "v3"),
    # A client cannot pick its version: the tag it sends from an untrusted address is dropped.
    ("/", {"x-canary-version": "v3"}, "v1"),
], ids=["plain", "tester-cookie", "chrome", "beta-query", "spoofed-tag"])
def test_demo_routes_as_the_readme_says(demo, path, headers, version):
    status, body, response_headers = demo(path, headers)
    assert status == 200
    assert body["version"] == version, body
    # The upstream received the decided tag, and the client sees it (response_header).
    assert body["headers"]["x-canary-version"] == version
    assert response_headers["x-canary-version"] == version


def test_demo_android_split_is_sticky(demo):
    status, body, headers = demo("/", {"user-agent": ANDROID})
    assert status == 200
    cookie = headers["set-cookie"]
    assert cookie.startswith("canary-uid=")
    first = body["version"]
    for _ in range(5):
        _, again, _ = demo("/", {"user-agent": ANDROID, "cookie": cookie.split(";")[0]})
        assert again["version"] == first


def test_demo_counts_with_labels(demo):
    # The compose command line merged stats-tags.yaml: decisions are one metric, labelled.
    demo("/", {"cookie": "user=tester"})
    lines = demo.prometheus().splitlines()
    assert "# TYPE canary_tagger_requests_total counter" in lines
    (tester,) = [line for line in lines if line.startswith(
        'canary_tagger_requests_total{decided_by="rule",rule="testers",version="v2"} ')]
    assert int(tester.rsplit(" ", 1)[1]) >= 1
