#!/usr/bin/env python3
"""Write the `sha256:` fields of the WasmPlugin manifests under envoyfilter/.

Which checksum a WasmPlugin needs depends on its url:

  file://, http(s)://  sha256 of the .wasm file itself: taken from dist/canary_tagger.wasm
                       (or --wasm PATH). Istio does not verify it for file://; it records
                       which build the manifest expects and `--check` compares it.
  oci://               the image MANIFEST digest (sha256 of the manifest bytes the registry
                       serves), never the .wasm file's hash: Istio's agent compares it with
                       the digest of the manifest it pulled, before fetching any layer
                       (Istio 1.12-1.13 in the image fetcher, 1.14 on in the module cache).
                       Written only when given: --oci-layout DIR reads it from an OCI layout
                       that envoyfilter/oci/build.py wrote (dist/oci/compat or
                       dist/oci/artifact), --oci-digest takes it as text; otherwise the
                       field is left as it is.

Only the sha256 lines change; comments, order and formatting stay. Running it twice
changes nothing the second time.

  envoyfilter/fill-sha256.py                       # every folder, from dist/canary_tagger.wasm
  envoyfilter/fill-sha256.py envoyfilter/weather   # one folder (or file)
  envoyfilter/fill-sha256.py --oci-layout dist/oci/compat  # also the oci:// variants
  envoyfilter/fill-sha256.py --oci-digest sha256:3f2a...   # the same, digest given as text
  envoyfilter/fill-sha256.py --check               # exit 1 if a field is stale; writes nothing

Exit codes: 0 done (or --check: all current), 1 --check found stale fields,
2 bad arguments or the module is missing. Python 3.8+, standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_WASM = HERE.parent / "dist" / "canary_tagger.wasm"

DOC_SEPARATOR = re.compile(r"^---\s*(#.*)?$")
KIND_LINE = re.compile(r"^kind:\s*[\"']?WasmPlugin[\"']?\s*(#.*)?$")
URL_LINE = re.compile(r"^\s+url:\s*[\"']?(?P<url>[^\"'\s#]+)[\"']?\s*(#.*)?$")
SHA_LINE = re.compile(r"^(?P<indent>\s+)sha256:\s*(?P<value>[^#\n]*?)\s*(?P<comment>#.*)?$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as module:
        for chunk in iter(lambda: module.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def normalise_digest(text: str) -> str:
    value = text.strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:"):]
    if not HEX64.match(value):
        raise ValueError(f"--oci-digest {text!r} is not 64 hex digits (optionally prefixed sha256:)")
    return value


def layout_digest(folder: Path) -> str:
    """The digest of the one manifest in an OCI image layout (its index.json)."""
    index_path = folder / "index.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"--oci-layout {folder}: no readable index.json ({error}); build the "
                         f"layouts with `make oci`") from error
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or len(manifests) != 1:
        raise ValueError(f"--oci-layout {folder}: index.json must list exactly one manifest")
    entry = manifests[0]
    return normalise_digest(str(entry.get("digest", "") if isinstance(entry, dict) else ""))


def split_documents(lines: list[str]) -> list[list[str]]:
    documents: list[list[str]] = [[]]
    for line in lines:
        if DOC_SEPARATOR.match(line.rstrip("\n")):
            documents.append([line])
        else:
            documents[-1].append(line)
    return documents


def wanted_sha256(document: list[str], wasm_hash: str | None, oci_digest: str | None):
    """(scheme, value the sha256 fields should hold or None to leave them)."""
    if not any(KIND_LINE.match(line.rstrip("\n")) for line in document):
        return None, None
    for line in document:
        match = URL_LINE.match(line.rstrip("\n"))
        if match:
            url = match.group("url")
            scheme = url.split("://", 1)[0] if "://" in url else "oci"  # Istio's default
            if scheme == "oci":
                return scheme, oci_digest
            if scheme in ("file", "http", "https"):
                return scheme, wasm_hash
            return scheme, None
    return None, None


def process(path: Path, wasm_hash: str | None, oci_digest: str | None, check: bool,
            needs_wasm: list[str]) -> list[str]:
    """Rewrites (or, with check, inspects) one file; returns the stale fields found."""
    original = path.read_text(encoding="utf-8").splitlines(keepends=True)
    stale: list[str] = []
    output: list[str] = []
    fields = 0
    for document in split_documents(original):
        scheme, value = wanted_sha256(document, wasm_hash, oci_digest)
        for line in document:
            match = SHA_LINE.match(line.rstrip("\n"))
            if scheme is None or not match:
                output.append(line)
                continue
            fields += 1
            if value is None:
                if scheme in ("file", "http", "https"):
                    needs_wasm.append(str(path))
                output.append(line)
                continue
            current = match.group("value").strip("\"' ")
            if current != value:
                stale.append(f"{path}: sha256 of the {scheme}:// variant is "
                             f"{current or 'empty'}, expected {value}")
            comment = f"  {match.group('comment')}" if match.group("comment") else ""
            ending = "\n" if line.endswith("\n") else ""
            output.append(f'{match.group("indent")}sha256: "{value}"{comment}{ending}')
    if not check and output != original:
        path.write_text("".join(output), encoding="utf-8")
        print(f"updated    {path}")
    elif not check and fields:
        print(f"unchanged  {path}")
    return stale


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Fill the sha256 fields of the WasmPlugin manifests.",
        epilog="See the module docstring (head of this file) for details.")
    parser.add_argument("paths", nargs="*", type=Path, default=[HERE],
                        help="folders or YAML files (default: the whole envoyfilter/ folder)")
    parser.add_argument("--wasm", type=Path,
                        default=Path(os.environ.get("CANARY_TAGGER_WASM", DEFAULT_WASM)),
                        help="the module (default: dist/canary_tagger.wasm or $CANARY_TAGGER_WASM)")
    oci = parser.add_mutually_exclusive_group()
    oci.add_argument("--oci-digest", help="image manifest digest for the oci:// variants")
    oci.add_argument("--oci-layout", type=Path,
                     help="OCI layout whose manifest digest goes into the oci:// variants "
                          "(dist/oci/compat or dist/oci/artifact, written by `make oci`)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if any field is not what it should be")
    args = parser.parse_args(argv)

    try:
        if args.oci_layout:
            oci_digest = layout_digest(args.oci_layout)
        else:
            oci_digest = normalise_digest(args.oci_digest) if args.oci_digest else None
    except ValueError as error:
        print(f"fill-sha256: {error}", file=sys.stderr)
        return 2
    wasm_hash = file_sha256(args.wasm) if args.wasm.is_file() else None

    files: list[Path] = []
    for path in args.paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            files.append(path)
        else:
            print(f"fill-sha256: {path} does not exist", file=sys.stderr)
            return 2

    needs_wasm: list[str] = []
    stale: list[str] = []
    for path in files:
        stale += process(path, wasm_hash, oci_digest, args.check, needs_wasm)
    if needs_wasm:
        print(f"fill-sha256: {args.wasm} does not exist, so the sha256 of the file:// variants "
              f"in {', '.join(sorted(set(needs_wasm)))} cannot be written. Build the module "
              f"first (`make wasm`) or pass --wasm PATH.", file=sys.stderr)
        return 2
    if args.check:
        for line in stale:
            print(line)
        if stale:
            print(f"fill-sha256 --check: {len(stale)} stale sha256 field(s); run "
                  f"envoyfilter/fill-sha256.py to update them", file=sys.stderr)
            return 1
        print("fill-sha256 --check: every sha256 field is current")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
