"""Packaging: the OCI image recipe, its build script, and the sha256 filler.

No container engine runs on these machines, so build.sh is exercised twice: with no
builder at all (it must say what is missing and exit 3) and with a stand-in `docker`
that records what it was asked to build (the build context must be exactly the Dockerfile
and plugin.wasm, byte for byte the module).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recipes import ENVOYFILTER, SCENARIOS, require_wasm

BUILD_SH = ENVOYFILTER / "oci" / "build.sh"
FILL = ENVOYFILTER / "fill-sha256.py"
# A ConfigMap (the file:// route in gateway-wasm-volume.yaml) holds at most 1 MiB.
CONFIGMAP_LIMIT = 1024 * 1024
FAKE_DIGEST = "4f" * 32


# ---------------------------------------------------------------- Dockerfile

def dockerfile_instructions() -> list[list[str]]:
    """The Dockerfile's instructions as word lists, continuation lines joined."""
    text = (ENVOYFILTER / "oci" / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [line.split() for line in logical.splitlines() if line.strip()]


def test_dockerfile_is_the_wasm_compat_image():
    instructions = dockerfile_instructions()
    assert instructions[0] == ["FROM", "scratch"]
    keywords = [words[0] for words in instructions]
    # Exactly one layer: one COPY, no ADD or RUN (LABEL adds no layer).
    assert keywords.count("COPY") == 1 and "ADD" not in keywords and "RUN" not in keywords
    (copy,) = [words for words in instructions if words[0] == "COPY"]
    assert copy[1:] in (["plugin.wasm", "./"], ["plugin.wasm", "/"], ["plugin.wasm", "/plugin.wasm"])


# ---------------------------------------------------------------- build.sh

def _tool_dir(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    """A PATH with what build.sh needs and no container builder (plus `extra` stubs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "sed", "head", "mktemp", "cp", "rm", "tr", "awk", "cat",
                 "mkdir"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed to run build.sh"
        (bin_dir / tool).symlink_to(found)
    for name, script in (extra or {}).items():
        path = bin_dir / name
        path.write_text(script)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def _run_build(args: list[str], bin_dir: Path, module: Path) -> subprocess.CompletedProcess:
    env = {"PATH": str(bin_dir), "CANARY_TAGGER_WASM": str(module), "HOME": str(bin_dir)}
    return subprocess.run([str(bin_dir / "bash"), str(BUILD_SH), *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_build_sh_says_what_is_missing(tmp_path):
    module = tmp_path / "module.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    result = _run_build([], _tool_dir(tmp_path), module)
    assert result.returncode == 3, result.stderr
    for builder in ("buildah: not installed", "podman: not installed", "docker: not installed"):
        assert builder in result.stderr
    assert "wasmplugin-file.yaml" in result.stderr  # and the way around the image


def test_build_sh_names_an_unreachable_docker_engine(tmp_path):
    module = tmp_path / "module.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    no_engine = "#!/bin/bash\n[ \"$1\" = info ] && { echo 'Cannot connect to the Docker daemon' >&2; exit 1; }\nexit 0\n"
    result = _run_build([], _tool_dir(tmp_path, {"docker": no_engine}), module)
    assert result.returncode == 3
    assert "docker: the CLI is installed but no Docker engine answers" in result.stderr


def test_build_sh_without_module_points_to_make_wasm(tmp_path):
    result = _run_build([], _tool_dir(tmp_path), tmp_path / "missing.wasm")
    assert result.returncode == 2 and "make wasm" in result.stderr


def test_build_sh_refuses_the_placeholder_owner(tmp_path):
    module = tmp_path / "module.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    bin_dir = _tool_dir(tmp_path)
    result = _run_build(["--push", "ghcr.io/OWNER/canary-tagger:0.1.0"], bin_dir, module)
    assert result.returncode == 2 and "OWNER" in result.stderr
    result = _run_build(["--push"], bin_dir, module)
    assert result.returncode == 2 and "--push needs the image" in result.stderr


def test_build_sh_builds_and_pushes_with_docker(tmp_path):
    module = tmp_path / "module.wasm"
    module.write_bytes(b"\0asm\1\0\0\0" + os.urandom(64))
    record = tmp_path / "record"
    record.mkdir()
    fake_docker = f"""#!/bin/bash
echo "$*" >> {record}/calls
case "$1" in
  info) exit 0 ;;
  build) context="${{@: -1}}"; cp -r "$context" {record}/context ;;
  push) ;;
  image) echo "ghcr.io/acme/canary-tagger@sha256:{FAKE_DIGEST}" ;;
esac
"""
    image = "ghcr.io/acme/canary-tagger:0.1.0"
    result = _run_build(["--push", image], _tool_dir(tmp_path, {"docker": fake_docker}), module)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = (record / "calls").read_text().splitlines()
    assert calls[0] == "info"
    assert calls[1].startswith(f"build -t {image} ")
    assert calls[2] == f"push {image}"
    context = record / "context"
    assert sorted(p.name for p in context.iterdir()) == ["Dockerfile", "plugin.wasm"]
    assert (context / "plugin.wasm").read_bytes() == module.read_bytes()
    assert (context / "Dockerfile").read_bytes() == (ENVOYFILTER / "oci" / "Dockerfile").read_bytes()
    assert f"manifest digest: sha256:{FAKE_DIGEST}" in result.stdout
    assert f"fill-sha256.py --oci-digest sha256:{FAKE_DIGEST}" in result.stdout


def test_build_sh_prefers_buildah_with_the_compat_annotation(tmp_path):
    module = tmp_path / "module.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    record = tmp_path / "calls"
    fake = f"#!/bin/bash\necho \"$*\" >> {record}\n"
    fake += "[ \"$1\" = push ] && echo sha256:" + FAKE_DIGEST + " > \"$3\"\nexit 0\n"
    bin_dir = _tool_dir(tmp_path, {"buildah": fake, "docker": "#!/bin/bash\nexit 0\n"})
    result = _run_build(["--push", "quay.io/acme/canary-tagger:0.1.0"], bin_dir, module)
    assert result.returncode == 0, result.stderr
    build, push = record.read_text().splitlines()
    assert build.startswith("build --format oci --annotation module.wasm.image/variant=compat -t ")
    assert push.startswith("push --digestfile ")
    assert f"sha256:{FAKE_DIGEST}" in result.stdout


# ---------------------------------------------------------------- fill-sha256.py

def _fill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FILL), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def _sha_fields(root: Path) -> dict[str, str]:
    fields = {}
    for folder in SCENARIOS:
        for name in ("wasmplugin.yaml", "wasmplugin-file.yaml"):
            (doc,) = yaml.safe_load_all((root / folder / name).read_text())
            fields[f"{folder}/{name}"] = doc["spec"]["sha256"]
    return fields


@pytest.fixture
def recipes_copy(tmp_path):
    copy = tmp_path / "envoyfilter"
    shutil.copytree(ENVOYFILTER, copy, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    return copy


def test_fill_sha256_writes_the_module_hash_into_file_variants(recipes_copy):
    module = require_wasm()
    expected = hashlib.sha256(module.read_bytes()).hexdigest()
    before = {p: p.read_text() for p in recipes_copy.rglob("*.yaml")}
    result = _fill("--wasm", str(module), str(recipes_copy))
    assert result.returncode == 0, result.stderr
    fields = _sha_fields(recipes_copy)
    for name, value in fields.items():
        # oci:// wants the image manifest digest, which only build.sh --push knows.
        assert value == (expected if name.endswith("-file.yaml") else ""), name
    # Only the sha256 lines changed: every document is otherwise the same.
    for path, text in before.items():
        after = path.read_text()
        changed = [(a, b) for a, b in zip(text.splitlines(), after.splitlines()) if a != b]
        assert len(text.splitlines()) == len(after.splitlines())
        assert all(re.match(r'\s+sha256: "[0-9a-f]{64}"$', b) for _, b in changed), changed
    # Idempotent: a second run changes no byte and --check agrees.
    snapshot = {p: p.read_bytes() for p in recipes_copy.rglob("*.yaml")}
    assert _fill("--wasm", str(module), str(recipes_copy)).returncode == 0
    assert {p: p.read_bytes() for p in recipes_copy.rglob("*.yaml")} == snapshot
    check = _fill("--check", "--wasm", str(module), str(recipes_copy))
    assert check.returncode == 0, check.stdout + check.stderr


def test_fill_sha256_oci_digest_and_check(recipes_copy, tmp_path):
    module = tmp_path / "module.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    assert _fill("--wasm", str(module), "--oci-digest", f"sha256:{FAKE_DIGEST}",
                 str(recipes_copy / "weather")).returncode == 0
    fields = _sha_fields(recipes_copy)
    assert fields["weather/wasmplugin.yaml"] == FAKE_DIGEST
    assert fields["weather/wasmplugin-file.yaml"] == hashlib.sha256(module.read_bytes()).hexdigest()
    assert fields["mqtt/wasmplugin.yaml"] == ""  # only the folder named was touched
    # A rebuilt module makes the recorded hash stale: --check says so and writes nothing.
    module.write_bytes(b"\0asm\1\0\0\0rebuilt")
    snapshot = (recipes_copy / "weather" / "wasmplugin-file.yaml").read_bytes()
    stale = _fill("--check", "--wasm", str(module), str(recipes_copy / "weather"))
    assert stale.returncode == 1 and "stale" in stale.stderr
    assert (recipes_copy / "weather" / "wasmplugin-file.yaml").read_bytes() == snapshot
    assert _fill("--oci-digest", "sha256:short", str(recipes_copy)).returncode == 2
    missing = _fill("--wasm", str(tmp_path / "absent.wasm"), str(recipes_copy))
    assert missing.returncode == 2 and "make wasm" in missing.stderr


def test_module_fits_the_configmap_route():
    """gateway-wasm-volume.yaml ships the module in a ConfigMap, which holds 1 MiB."""
    size = require_wasm().stat().st_size
    assert size <= CONFIGMAP_LIMIT, (
        f"the module is {size} bytes, over the 1 MiB a ConfigMap holds: the file:// route "
        f"documented in envoyfilter/ would fail. Shrink the module (wasm-opt, features) or "
        f"change the recipes to mount it another way.")
