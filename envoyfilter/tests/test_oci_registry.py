"""The Wasm OCI images through a real registry, the way Istio's agent will pull them.

A real CNCF distribution registry (Debian's docker-registry, unpacked by the Makefile into
.venv/tools) serves on 127.0.0.1 at a port the OS picks, storing into a temporary folder,
without auth. Each image format is built by envoyfilter/oci/build.py and pushed by it
with skopeo (what `make oci PUSH=1` runs), then pulled back with a different client: this
test, speaking the registry HTTP API v2 with httpx. The pulled module must be byte for
byte dist/canary_tagger.wasm, found the way Istio's image fetcher (pkg/wasm) finds it, and
the digest of the manifest the registry serves must be the sha256 that
`fill-sha256.py --oci-layout` writes into the oci:// WasmPlugins: that is the value
Istio compares the pulled manifest with.
"""

from __future__ import annotations

import ctypes
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest
import yaml

from recipes import ENVOYFILTER, REPO_ROOT, copy_recipes, fill_sha256, require_wasm, sha256_fields

REGISTRY_BIN = REPO_ROOT / ".venv" / "tools" / "docker-registry"
BUILD = ENVOYFILTER / "oci" / "build.py"
START_TIMEOUT_S = 30
PUSH_TIMEOUT_S = 180
STOP_TIMEOUT_S = 10
LISTENING = re.compile(r"listening on (?P<host>[0-9.]+):(?P<port>[0-9]+)")
# What a client asks for; Istio's fetcher (go-containerregistry) sends the same kinds.
ACCEPT = ", ".join(["application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])


def _die_with_parent():
    """The registry gets SIGTERM if pytest dies without running the fixture's teardown."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> str:
    """host:port of a registry on loopback, stopped (bounded) when the module's tests end."""
    if not os.access(REGISTRY_BIN, os.X_OK):
        pytest.fail(f"{REGISTRY_BIN} is missing: run `make manifests` or `make test` (they "
                    f"unpack the registry from Debian's docker-registry package)")
    workdir = tmp_path_factory.mktemp("registry")
    config = workdir / "config.yml"
    config.write_text(yaml.safe_dump({
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")},
                    "maintenance": {"uploadpurging": {"enabled": False}}},
        # Loopback only, port chosen by the OS; no auth section: anonymous push and pull.
        "http": {"addr": "127.0.0.1:0", "secret": secrets.token_hex(16)},
    }))
    log_path = workdir / "registry.log"
    with log_path.open("wb") as log:
        # Only PATH from our environment: REGISTRY_* variables would override the config.
        proc = subprocess.Popen([str(REGISTRY_BIN), "serve", str(config)], stdout=log,
                                stderr=subprocess.STDOUT, env={"PATH": os.environ.get("PATH", "")},
                                preexec_fn=_die_with_parent)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        address = None
        while address is None:
            found = LISTENING.search(log_path.read_text(errors="replace"))
            if found:
                address = (found.group("host"), int(found.group("port")))
            elif proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the registry did not start listening within {START_TIMEOUT_S} s "
                            f"(exit code {proc.poll()}):\n{log_path.read_text(errors='replace')[-3000:]}")
            else:
                time.sleep(0.05)
        assert address[0] == "127.0.0.1", address
        url = f"http://127.0.0.1:{address[1]}"
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{url}/v2/").status_code == 200  # API v2, no auth challenge
        yield f"127.0.0.1:{address[1]}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="module")
def pushed(registry, tmp_path_factory):
    """push(variant) -> (image reference, build.py output): `make oci PUSH=1` against the
    local registry, once per variant."""
    workdir = tmp_path_factory.mktemp("oci-build")
    auth_file = workdir / "auth.json"
    auth_file.write_text('{"auths": {}}')  # none of the user's registry credentials
    done: dict[str, tuple[str, Path, str]] = {}

    def push(variant: str) -> tuple[str, Path, str]:
        if variant not in done:
            image = f"{registry}/acme/canary-tagger:{variant}"
            out = workdir / "dist-oci"
            result = subprocess.run(
                [sys.executable, str(BUILD), "--module", str(require_wasm()), "--out", str(out),
                 "--push", image, "--variant", variant, "--insecure"],
                capture_output=True, text=True, timeout=PUSH_TIMEOUT_S, check=False,
                env={**os.environ, "REGISTRY_AUTH_FILE": str(auth_file)})
            assert result.returncode == 0, result.stdout + result.stderr
            done[variant] = (image, out / variant, result.stdout)
        return done[variant]

    return push


class RegistryClient:
    """A puller that is not skopeo: plain HTTP API v2 requests, every digest verified."""

    def __init__(self, image: str):
        host, _, rest = image.partition("/")
        self.repository, _, self.tag = rest.rpartition(":")
        self.base = f"http://{host}/v2/{self.repository}"
        self.http = httpx.Client(timeout=30)

    def manifest(self, reference: str) -> tuple[bytes, dict]:
        response = self.http.get(f"{self.base}/manifests/{reference}", headers={"Accept": ACCEPT})
        assert response.status_code == 200, (reference, response.status_code, response.text)
        digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
        # The registry names the same digest as the bytes it served.
        assert response.headers["Docker-Content-Digest"] == digest
        return response.content, json.loads(response.content)

    def blob(self, entry: dict) -> bytes:
        response = self.http.get(f"{self.base}/blobs/{entry['digest']}", follow_redirects=True)
        assert response.status_code == 200, (entry, response.status_code)
        assert len(response.content) == entry["size"]
        assert "sha256:" + hashlib.sha256(response.content).hexdigest() == entry["digest"]
        return response.content

    def close(self):
        self.http.close()


def module_from_compat(client: RegistryClient, manifest: dict) -> bytes:
    """Istio's compat path: OCI manifest, last layer tar+gzip, the entry named plugin.wasm."""
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["annotations"]["module.wasm.image/variant"] == "compat"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    (layer,) = manifest["layers"]  # the compat spec: exactly one layer
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    tar_bytes = gzip.decompress(client.blob(layer))
    config = json.loads(client.blob(manifest["config"]))
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == ["plugin.wasm"]
        assert members[0].mtime == 0 and members[0].isreg()
        extracted = archive.extractfile(members[0])
        assert extracted is not None
        return extracted.read()


def module_from_artifact(client: RegistryClient, manifest: dict) -> bytes:
    """Istio's oci-variant path: exactly two layers, the module is the
    application/vnd.module.wasm.content.layer.v1+wasm one, raw."""
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.module.wasm.config.v1+json"
    layers = manifest["layers"]
    assert len(layers) == 2
    by_type = {layer["mediaType"]: layer for layer in layers}
    assert set(by_type) == {"application/vnd.module.wasm.config.v1+json",
                            "application/vnd.module.wasm.content.layer.v1+wasm"}
    runtime_config = json.loads(client.blob(by_type["application/vnd.module.wasm.config.v1+json"]))
    assert runtime_config["type"] == "envoy_proxy"
    assert runtime_config["abiVersions"] and all(
        version.startswith("proxy_abi_version_") for version in runtime_config["abiVersions"])
    return client.blob(by_type["application/vnd.module.wasm.content.layer.v1+wasm"])


EXTRACT = {"compat": module_from_compat, "artifact": module_from_artifact}


@pytest.mark.parametrize("variant", sorted(EXTRACT))
def test_pushed_image_pulls_back_as_the_module(pushed, variant):
    image, _, output = pushed(variant)
    client = RegistryClient(image)
    try:
        manifest_bytes, manifest = client.manifest(client.tag)
        digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
        module = EXTRACT[variant](client, manifest)
        # url: oci://...@sha256:<digest> pulls the same manifest.
        assert client.manifest(digest)[0] == manifest_bytes
    finally:
        client.close()
    assert module == require_wasm().read_bytes()
    # What build.py reported after the push is what the registry serves.
    assert f"manifest digest: {digest}" in output


@pytest.mark.parametrize("variant", sorted(EXTRACT))
def test_fill_sha256_writes_the_digest_istio_compares(pushed, variant, tmp_path):
    image, layout, _ = pushed(variant)
    client = RegistryClient(image)
    try:
        manifest_bytes, _ = client.manifest(client.tag)
    finally:
        client.close()
    served = hashlib.sha256(manifest_bytes).hexdigest()
    module_hash = hashlib.sha256(require_wasm().read_bytes()).hexdigest()
    recipes = copy_recipes(tmp_path)
    result = fill_sha256("--wasm", str(require_wasm()), "--oci-layout", str(layout), str(recipes))
    assert result.returncode == 0, result.stdout + result.stderr
    for name, value in sha256_fields(recipes).items():
        # oci:// carries the digest of the manifest as served; only file:// the module's hash.
        assert value == (module_hash if name.endswith("-file.yaml") else served), name
