"""Packaging: the Wasm OCI image builder, the sha256 filler, the ConfigMap size limit.

envoyfilter/oci/build.py writes the OCI layouts without a container engine; here it is
checked offline (layout shape, determinism, its refusals). test_oci_registry.py pushes
the layouts to a real registry and pulls them back.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recipes import ENVOYFILTER, copy_recipes, fill_sha256, require_wasm, sha256_fields

BUILD = ENVOYFILTER / "oci" / "build.py"
# A ConfigMap (the file:// route in gateway-wasm-volume.yaml) holds at most 1 MiB.
CONFIGMAP_LIMIT = 1024 * 1024
FAKE_DIGEST = "4f" * 32


# ---------------------------------------------------------------- build.py

def _build(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = None if path is None else {"PATH": path}
    return subprocess.run([sys.executable, str(BUILD), *args], capture_output=True, text=True,
                          timeout=120, check=False, env=env)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _manifest(layout: Path) -> tuple[str, dict]:
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    blob = (layout / "blobs" / "sha256" / entry["digest"].split(":")[1]).read_bytes()
    return entry["digest"], json.loads(blob)


def test_build_writes_both_layouts_deterministically(tmp_path):
    module = require_wasm()
    first = _build("--module", str(module), "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    second = _build("--module", str(module), "--out", str(tmp_path / "b"))
    assert second.returncode == 0, second.stderr
    for variant in ("compat", "artifact"):
        layout = tmp_path / "a" / variant
        # Same module, same bytes: no timestamps or random names anywhere in the layout.
        assert _tree(layout) == _tree(tmp_path / "b" / variant)
        assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
        digest, manifest = _manifest(layout)
        # It prints each layout with its tag and the digest the manifests need.
        assert re.search(rf"^{re.escape(str(layout))}:\S+  {digest}$", first.stdout, re.M), first.stdout
        # Every blob the manifest names is in the layout, under its own digest.
        blobs = layout / "blobs" / "sha256"
        for entry in [manifest["config"], *manifest["layers"]]:
            blob = (blobs / entry["digest"].split(":")[1]).read_bytes()
            assert "sha256:" + hashlib.sha256(blob).hexdigest() == entry["digest"]
            assert len(blob) == entry["size"]
    # The artifact's module layer is the module itself.
    _, artifact = _manifest(tmp_path / "a" / "artifact")
    (content,) = [layer for layer in artifact["layers"]
                  if layer["mediaType"] == "application/vnd.module.wasm.content.layer.v1+wasm"]
    assert content["digest"] == "sha256:" + hashlib.sha256(module.read_bytes()).hexdigest()


def test_build_digest_follows_the_module(tmp_path):
    module = tmp_path / "module.wasm"
    digests = []
    for body in (b"one", b"two"):
        module.write_bytes(b"\0asm\1\0\0\0" + body)
        result = _build("--module", str(module), "--out", str(tmp_path / "oci"))
        assert result.returncode == 0, result.stderr
        digests.append({v: _manifest(tmp_path / "oci" / v)[0] for v in ("compat", "artifact")})
    assert digests[0]["compat"] != digests[1]["compat"]
    assert digests[0]["artifact"] != digests[1]["artifact"]


def test_build_refuses_a_missing_or_foreign_module(tmp_path):
    missing = _build("--module", str(tmp_path / "absent.wasm"), "--out", str(tmp_path / "oci"))
    assert missing.returncode == 2 and "make wasm" in missing.stderr
    text = tmp_path / "notes.txt"
    text.write_text("not a module")
    foreign = _build("--module", str(text), "--out", str(tmp_path / "oci"))
    assert foreign.returncode == 2 and "is not a Wasm module" in foreign.stderr
    assert not (tmp_path / "oci").exists()


def test_push_refuses_placeholder_and_malformed_images(tmp_path):
    module = require_wasm()
    for image, reason in [("ghcr.io/OWNER/canary-tagger:0.1.0", "placeholder OWNER"),
                          ("canary-tagger", "not a registry image reference"),
                          ("ghcr.io/acme/canary-tagger@sha256:" + FAKE_DIGEST, "not a registry image reference")]:
        result = _build("--module", str(module), "--out", str(tmp_path / "oci"), "--push", image)
        assert result.returncode == 2 and reason in result.stderr, (image, result.stderr)
    assert not (tmp_path / "oci").exists()  # refused before building anything


def test_push_without_skopeo_says_how_to_get_it(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()  # a PATH without skopeo
    result = _build("--module", str(require_wasm()), "--out", str(tmp_path / "oci"),
                    "--push", "ghcr.io/acme/canary-tagger:0.1.0", path=str(bin_dir))
    assert result.returncode == 3, result.stderr
    assert "apt-get install skopeo" in result.stderr
    assert (tmp_path / "oci" / "compat" / "index.json").is_file()  # the layouts are built


# ---------------------------------------------------------------- fill-sha256.py

@pytest.fixture
def recipes_copy(tmp_path):
    return copy_recipes(tmp_path)


def test_fill_sha256_writes_the_module_hash_into_file_variants(recipes_copy):
    module = require_wasm()
    expected = hashlib.sha256(module.read_bytes()).hexdigest()
    before = {p: p.read_text() for p in recipes_copy.rglob("*.yaml")}
    result = fill_sha256("--wasm", str(module), str(recipes_copy))
    assert result.returncode == 0, result.stderr
    fields = sha256_fields(recipes_copy)
    for name, value in fields.items():
        # oci:// wants the image manifest digest: only --oci-layout / --oci-digest give it.
        assert value == (expected if name.endswith("-file.yaml") else ""), name
    # Only the sha256 lines changed: every document is otherwise the same.
    for path, text in before.items():
        after = path.read_text()
        changed = [(a, b) for a, b in zip(text.splitlines(), after.splitlines()) if a != b]
        assert len(text.splitlines()) == len(after.splitlines())
        assert all(re.match(r'\s+sha256: "[0-9a-f]{64}"$', b) for _, b in changed), changed
    # Idempotent: a second run changes no byte and --check agrees.
    snapshot = {p: p.read_bytes() for p in recipes_copy.rglob("*.yaml")}
    assert fill_sha256("--wasm", str(module), str(recipes_copy)).returncode == 0
    assert {p: p.read_bytes() for p in recipes_copy.rglob("*.yaml")} == snapshot
    check = fill_sha256("--check", "--wasm", str(module), str(recipes_copy))
    assert check.returncode == 0, check.stdout + check.stderr


def test_fill_sha256_oci_digest_and_check(recipes_copy, tmp_path):
    module = tmp_path / "module.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    assert fill_sha256("--wasm", str(module), "--oci-digest", f"sha256:{FAKE_DIGEST}",
                 str(recipes_copy / "weather")).returncode == 0
    fields = sha256_fields(recipes_copy)
    assert fields["weather/wasmplugin.yaml"] == FAKE_DIGEST
    assert fields["weather/wasmplugin-file.yaml"] == hashlib.sha256(module.read_bytes()).hexdigest()
    assert fields["mqtt/wasmplugin.yaml"] == ""  # only the folder named was touched
    # A rebuilt module makes the recorded hash stale: --check says so and writes nothing.
    module.write_bytes(b"\0asm\1\0\0\0rebuilt")
    snapshot = (recipes_copy / "weather" / "wasmplugin-file.yaml").read_bytes()
    stale = fill_sha256("--check", "--wasm", str(module), str(recipes_copy / "weather"))
    assert stale.returncode == 1 and "stale" in stale.stderr
    assert (recipes_copy / "weather" / "wasmplugin-file.yaml").read_bytes() == snapshot
    assert fill_sha256("--oci-digest", "sha256:short", str(recipes_copy)).returncode == 2
    no_layout = fill_sha256("--oci-layout", str(tmp_path / "absent"), str(recipes_copy))
    assert no_layout.returncode == 2 and "make oci" in no_layout.stderr
    missing = fill_sha256("--wasm", str(tmp_path / "absent.wasm"), str(recipes_copy))
    assert missing.returncode == 2 and "make wasm" in missing.stderr


def test_module_fits_the_configmap_route():
    """gateway-wasm-volume.yaml ships the module in a ConfigMap, which holds 1 MiB."""
    size = require_wasm().stat().st_size
    assert size <= CONFIGMAP_LIMIT, (
        f"the module is {size} bytes, over the 1 MiB a ConfigMap holds: the file:// route "
        f"documented in envoyfilter/ would fail. Shrink the module (wasm-opt, features) or "
        f"change the recipes to mount it another way.")
