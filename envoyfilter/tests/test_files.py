"""Every file of the recipes parses, and every folder holds what its README promises."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from recipes import ENVOYFILTER, REPO_ROOT, SCENARIOS, ROUTED_SCENARIOS, docs, json_files, rel, yaml_files

# What a platform team copies: every scenario folder has these.
COMMON_FILES = ["README.md", "plugin-config.json", "wasmplugin.yaml", "wasmplugin-file.yaml",
                "envoyfilter.yaml", "gateway.yaml", "gateway-wasm-volume.yaml"]
ROUTING_FILES = ["virtualservice.yaml", "destinationrule.yaml"]


@pytest.mark.parametrize("path", yaml_files(), ids=rel)
def test_yaml_parses(path):
    with path.open(encoding="utf-8") as handle:
        documents = [doc for doc in yaml.safe_load_all(handle) if doc is not None]
    assert documents, f"{rel(path)} holds no YAML document"
    for doc in documents:
        assert isinstance(doc, dict), f"{rel(path)}: a document is not a mapping"


@pytest.mark.parametrize("path", json_files(), ids=rel)
def test_json_parses_and_is_a_plugin_config(path):
    config = json.loads(path.read_text(encoding="utf-8"))
    # Convention (tests/example_configs.rs relies on it): every .json here is a plugin
    # config, compiled by the engine in `cargo test --test example_configs`.
    assert isinstance(config, dict) and "versions" in config and "default_version" in config, (
        f"{rel(path)} is not a plugin config")


def test_the_walks_find_the_recipes():
    # An empty parametrization would pass silently; make sure the globs see the files.
    assert len(yaml_files()) >= 30
    assert len(json_files()) >= 6


@pytest.mark.parametrize("folder", SCENARIOS)
def test_scenario_folder_is_complete(folder):
    expected = COMMON_FILES + (ROUTING_FILES if folder in ROUTED_SCENARIOS else
                               ["canary.yaml", "metric-template.yaml"])
    missing = [name for name in expected if not (ENVOYFILTER / folder / name).is_file()]
    assert not missing, f"envoyfilter/{folder} lacks {missing}"


def test_packaging_and_demo_files_exist():
    for name in ["README.md", "fill-sha256.py", "oci/build.py", "oci/README.md",
                 "compose/docker-compose.yaml", "compose/envoy.yaml", "compose/echo.py",
                 "compose/plugin-config.json", "compose/README.md", "metrics/README.md",
                 "metrics/stats-tags.yaml", "metrics/ingressgateway-stats-tags-patch.yaml"]:
        assert (ENVOYFILTER / name).is_file(), f"envoyfilter/{name} is missing"


@pytest.mark.parametrize("path", yaml_files(), ids=rel)
def test_every_resource_names_its_namespace(path):
    # Copying a folder must not depend on the caller's current namespace. Patch files
    # (no apiVersion) are applied with an explicit -n in their header comment.
    for doc in docs(path):
        if "apiVersion" in doc and "kind" in doc and doc["kind"] not in ("ConfigMap", "Namespace") \
                and path.name != "docker-compose.yaml" and "static_resources" not in doc:
            assert doc.get("metadata", {}).get("namespace"), (
                f"{rel(path)}: {doc['kind']} {doc.get('metadata', {}).get('name')} has no namespace")


def test_make_help_lists_every_phony_target_with_one_line():
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    phony_block = re.search(r"^\.PHONY:((?:[^\n]*\\\n)*[^\n]*)", makefile, re.M)
    assert phony_block, "the Makefile has no .PHONY line"
    phony = set(phony_block.group(1).replace("\\\n", " ").split())
    out = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO_ROOT, check=True,
                         capture_output=True, text=True).stdout
    described = {}
    for line in out.splitlines():
        match = re.fullmatch(r"make (\S+) +(\S.*)", line)
        assert match, f"`make help` line is not `make TARGET  description`: {line!r}"
        described[match.group(1)] = match.group(2)
    assert set(described) == phony, (
        f"without a `## ` line: {sorted(phony - set(described))}; "
        f"described but not .PHONY: {sorted(set(described) - phony)}")
