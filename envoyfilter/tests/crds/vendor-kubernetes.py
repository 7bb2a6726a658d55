#!/usr/bin/env python3
"""Vendor the Kubernetes core kinds' published JSON Schemas into crds/kubernetes-vX.Y.Z/.

The schemas come from the PyPI package kubernetes-validate, which ships, for each
Kubernetes release, JSON Schemas converted from that release's OpenAPI spec. Its
"local-strict" set is the strict form: every object has `additionalProperties: false`, so
an unknown field fails. Each kind is a small file whose `$ref`s point into one shared
_definitions.json of 1.8 MB; this script copies the kind files verbatim and writes a
_definitions.json that holds only the definitions they reach (each one verbatim).

    pip download --no-deps kubernetes-validate==1.37.0 -d /tmp/kv
    python3 envoyfilter/tests/crds/vendor-kubernetes.py /tmp/kv/kubernetes_validate-1.37.0-py3-none-any.whl

KINDS lists exactly the core kinds the manifests and `canary-tagger render` use; add one
here (and rerun) when a manifest starts using another.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

KUBERNETES = "v1.37.0"
KINDS = ["service-v1", "namespace-v1", "secret-v1"]
SOURCE = f"kubernetes_validate/kubernetes-json-schema/{KUBERNETES}-local-strict/"
# A kind file's refs name the shared file; the definitions' refs within it are local.
DEFS_REF = re.compile(r'"\$ref": "(?:/api/_definitions\.json)?#/\$defs/([^"]+)"')
OUT = Path(__file__).resolve().parent / f"kubernetes-{KUBERNETES}"


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        kinds = {name: archive.read(f"{SOURCE}{name}.json").decode("utf-8") for name in KINDS}
        definitions = json.loads(archive.read(f"{SOURCE}_definitions.json"))
    wanted, queue = set(), [ref for text in kinds.values() for ref in DEFS_REF.findall(text)]
    while queue:
        name = queue.pop()
        if name not in wanted:
            wanted.add(name)
            queue += DEFS_REF.findall(json.dumps(definitions["$defs"][name]))
    subset = {**definitions,
              "$defs": {name: body for name, body in definitions["$defs"].items() if name in wanted}}
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    for name, text in kinds.items():
        (OUT / f"{name}.json").write_text(text, encoding="utf-8")
    (OUT / "_definitions.json").write_text(json.dumps(subset, indent=2) + "\n", encoding="utf-8")
    print(f"{OUT.name}/: {', '.join(KINDS)} and {len(wanted)} of "
          f"{len(definitions['$defs'])} definitions")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
