"""Validation of Kubernetes objects against the published CRDs in crds/ (see crds/README.md).

Each CRD's openAPIV3Schema (of every served version) becomes a JSON Schema for the
`jsonschema` validator, read the way the API server reads a structural schema:

- `x-kubernetes-int-or-string`: an integer or a string;
- `x-kubernetes-preserve-unknown-fields`: any further field is kept;
- any other object with `properties` and no `additionalProperties`: an unknown field is an
  error. The API server would prune it silently (or reject it under kubectl's strict field
  validation); here a misspelt field fails the test;
- `nullable`: null is allowed too;
- `x-kubernetes-validations` (CEL rules) and other `x-kubernetes-*` markers (list types,
  embedded resources) are not evaluated: no CEL interpreter here. test_consistency.py
  checks the rules the recipes rely on.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest
import yaml

CRDS = Path(__file__).resolve().parent / "crds"


def _jsonschema():
    try:
        import jsonschema
    except ImportError:
        pytest.fail("the jsonschema package is missing: run `make venv` (it installs "
                    "envoyfilter/tests/requirements.txt)")
    return jsonschema


def structural(schema):
    """A CRD's OpenAPI v3 schema as a JSON Schema (draft 7) with the API server's reading."""
    if isinstance(schema, list):
        return [structural(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: structural(value) for key, value in schema.items()
           if not key.startswith("x-kubernetes-") and key != "nullable"}
    for key in ("properties", "patternProperties"):
        if key in schema:
            out[key] = {name: structural(value) for name, value in schema[key].items()}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **out}
    if "properties" in schema and "additionalProperties" not in schema and \
            not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


@lru_cache(maxsize=None)
def validators() -> dict:
    """{(apiVersion, kind): validator} for every served version of every vendored CRD."""
    jsonschema = _jsonschema()
    found = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served"):
                    continue
                schema = structural(version["schema"]["openAPIV3Schema"])
                # apiVersion, kind and metadata (ObjectMeta) are the API server's, not every
                # CRD lists them: this version's own, and a name at least.
                api_version = f"{group}/{version['name']}"
                schema.setdefault("properties", {}).update({
                    "apiVersion": {"const": api_version}, "kind": {"const": kind},
                    "metadata": {"type": "object", "required": ["name"]}})
                schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind",
                                             "metadata"})
                jsonschema.Draft7Validator.check_schema(schema)
                found[(api_version, kind)] = jsonschema.Draft7Validator(schema)
    return found


def errors(doc: dict) -> list[str]:
    """Every schema violation of `doc`, as `path: message`; fails on a kind with no CRD."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    validator = validators().get(key)
    assert validator is not None, f"{key} has no CRD in {CRDS.name}/"
    return sorted(f"{'.'.join(str(p) for p in error.absolute_path) or '.'}: {error.message}"
                  for error in validator.iter_errors(doc))


def has_crd(doc: dict) -> bool:
    """Whether `doc`'s API group is one whose CRDs are vendored (Istio, Gateway API)."""
    group = str(doc.get("apiVersion", "")).split("/")[0]
    return group.endswith(".istio.io") or group == "gateway.networking.k8s.io"
