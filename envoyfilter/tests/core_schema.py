"""Validation of core Kubernetes objects (Service, Namespace, Secret) against the published
schemas vendored in crds/kubernetes-v1.37.0/ (see crds/README.md).

Those are the JSON Schemas (draft 2020-12) that the kubernetes-validate package converts
from the Kubernetes release's OpenAPI spec, in their strict form: every object has
`additionalProperties: false`, so an unknown (misspelt) field fails, as it does under
kubectl's strict field validation. They are used as published; on top of them a document
must have apiVersion, kind and a metadata.name, which the published schemas leave optional.
Format markers (int32, date-time) are annotations here, as in the schemas' draft.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from crd_schema import _jsonschema

KUBERNETES = Path(__file__).resolve().parent / "crds" / "kubernetes-v1.37.0"


@lru_cache(maxsize=None)
def validators() -> dict:
    """{(apiVersion, kind): validator} for every vendored core kind."""
    jsonschema = _jsonschema()
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    schemas = [json.loads(path.read_text(encoding="utf-8"))
               for path in sorted(KUBERNETES.glob("*.json"))]
    registry = Registry().with_resources(
        (schema["$id"], DRAFT202012.create_resource(schema)) for schema in schemas)
    found = {}
    for schema in schemas:
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            api_version = "/".join(part for part in (gvk["group"], gvk["version"]) if part)
            wrapper = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                       "allOf": [{"$ref": schema["$id"]}],
                       "required": ["apiVersion", "kind", "metadata"],
                       "properties": {"metadata": {"required": ["name"]}}}
            jsonschema.Draft202012Validator.check_schema(schema)
            found[(api_version, gvk["kind"])] = jsonschema.Draft202012Validator(
                wrapper, registry=registry)
    return found


def has_schema(doc: dict) -> bool:
    """Whether `doc` is of the core API group (apiVersion `v1`): vendored here, or an error."""
    return doc.get("apiVersion") == "v1"


def errors(doc: dict) -> list[str]:
    """Every schema violation of `doc`, as `path: message`; fails on a kind with no schema."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    validator = validators().get(key)
    assert validator is not None, (
        f"{key} has no schema in {KUBERNETES.parent.name}/{KUBERNETES.name}/: add it to KINDS "
        f"in {KUBERNETES.parent.name}/vendor-kubernetes.py and rerun it")
    return sorted(f"{'.'.join(str(p) for p in error.absolute_path) or '.'}: {error.message}"
                  for error in validator.iter_errors(doc))

