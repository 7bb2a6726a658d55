#!/usr/bin/env python3
"""Build canary-tagger's Wasm OCI images without a container engine; push them with skopeo.

Writes two OCI image layouts (the on-disk format of the OCI image spec, which skopeo
copies from), one for each format Istio's WasmPlugin pulls from an oci:// url:

  dist/oci/compat    the "compat" variant: an ordinary OCI image (config
                     application/vnd.oci.image.config.v1+json) with ONE layer,
                     application/vnd.oci.image.layer.v1.tar+gzip, a tar holding
                     plugin.wasm; annotation module.wasm.image/variant=compat. Every
                     registry that stores OCI images takes it.
  dist/oci/artifact  the "oci" variant (Wasm OCI artifact): config and first layer
                     application/vnd.module.wasm.config.v1+json (runtime-config.json),
                     second layer application/vnd.module.wasm.content.layer.v1+wasm, the
                     raw module. Needs a registry that accepts custom media types.

Both are deterministic: no timestamps, fixed tar header fields, and a gzip stream of
stored (uncompressed) deflate blocks written here rather than by zlib, whose output may
differ between zlib builds. The manifest digests therefore depend only on the module
bytes and on the name, version, description and licence in Cargo.toml: the same module
gives the same digests on every machine, before anything is pushed.

  envoyfilter/oci/build.py                  # build both layouts, print their manifest digests
  envoyfilter/oci/build.py --push ghcr.io/acme/canary-tagger:0.1.0
  envoyfilter/oci/build.py --push ghcr.io/acme/canary-tagger:0.1.0 --variant artifact
  envoyfilter/oci/build.py --push 127.0.0.1:5000/canary-tagger:0.1.0 --insecure
  envoyfilter/oci/build.py --push IMAGE -- --dest-authfile ./auth.json   # more skopeo options

--push copies one layout (compat unless --variant artifact) with
`skopeo copy --preserve-digests`: skopeo takes the registry credentials from
`skopeo login`, `docker login` (~/.docker/config.json, credential helpers included),
$REGISTRY_AUTH_FILE, or options given after `--` (e.g. --dest-creds USER:TOKEN, which
other local users can read in the process list). The pushed digest must equal the built
one, or the push is reported as failed.

The module is --module, else $CANARY_TAGGER_WASM, else dist/canary_tagger.wasm.
Exit codes: 0 done, 1 the push failed, 2 bad arguments or no valid module,
3 skopeo is not installed. Python 3.8+, standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_WASM = REPO / "dist" / "canary_tagger.wasm"
DEFAULT_OUT = REPO / "dist" / "oci"

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
TAR_GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
WASM_CONTENT = "application/vnd.module.wasm.content.layer.v1+wasm"
COMPAT_ANNOTATION = ("module.wasm.image/variant", "compat")
PLUGIN_FILE = "plugin.wasm"          # the name Istio looks for in a compat layer
RUNTIME_CONFIG_FILE = "runtime-config.json"
TITLE = "org.opencontainers.image.title"
REF_NAME = "org.opencontainers.image.ref.name"
WASM_MAGIC = b"\0asm\x01\0\0\0"      # Istio refuses a module without it
VARIANTS = ("compat", "artifact")


class BuildError(Exception):
    """A problem the user must fix; the message says what and how."""


class SkopeoMissing(BuildError):
    def __init__(self):
        super().__init__("pushing needs skopeo, which is not installed: apt-get install skopeo "
                         "(Debian/Ubuntu), dnf install skopeo, brew install skopeo; `make oci "
                         "PUSH=1` installs it on Debian. The layouts under dist/oci are built.")


class PushFailed(BuildError):
    """skopeo could not push; it printed why."""


# ---------------------------------------------------------------- inputs

def package_metadata(cargo_toml: Path) -> dict[str, str]:
    """name, version, description, license from Cargo.toml's [package] table."""
    metadata: dict[str, str] = {}
    section = ""
    for line in cargo_toml.read_text(encoding="utf-8").splitlines():
        header = re.match(r"^\s*\[([^\]]+)\]", line)
        if header:
            section = header.group(1).strip()
            continue
        field = re.match(r'^\s*(name|version|description|license)\s*=\s*"([^"]*)"', line)
        if section == "package" and field:
            metadata[field.group(1)] = field.group(2)
    missing = {"name", "version"} - metadata.keys()
    if missing:
        raise BuildError(f"{cargo_toml}: [package] has no {', '.join(sorted(missing))}")
    return metadata


def _leb128(data: bytes, offset: int) -> tuple[int, int]:
    """(value, next offset) of an unsigned LEB128 number."""
    value = shift = 0
    while offset < len(data):
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, offset
    raise BuildError("the module ends inside a number: it is not a complete Wasm binary")


def abi_versions(module: bytes) -> list[str]:
    """The proxy-wasm ABI versions the module exports (proxy_abi_version_* functions)."""
    found = []
    offset = len(WASM_MAGIC)
    while offset < len(module):
        section_id = module[offset]
        size, body = _leb128(module, offset + 1)
        offset = body + size
        if section_id != 7:  # the export section
            continue
        count, cursor = _leb128(module, body)
        for _ in range(count):
            length, cursor = _leb128(module, cursor)
            name = module[cursor:cursor + length].decode("utf-8", "replace")
            cursor += length + 1            # the export kind byte
            _, cursor = _leb128(module, cursor)  # the exported index
            if name.startswith("proxy_abi_version_"):
                found.append(name)
    return sorted(found)


def read_module(path: Path) -> bytes:
    if not path.is_file():
        raise BuildError(f"the module {path} does not exist. Build it first: make wasm")
    module = path.read_bytes()
    if not module.startswith(WASM_MAGIC):
        raise BuildError(f"{path} is not a Wasm module (no \\0asm version-1 header)")
    return module


# ---------------------------------------------------------------- deterministic blobs

def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_of(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def descriptor(media_type: str, blob: bytes, annotations: dict[str, str] | None = None) -> dict:
    entry = {"mediaType": media_type, "digest": digest_of(blob), "size": len(blob)}
    if annotations:
        entry["annotations"] = annotations
    return entry


def single_file_tar(name: str, content: bytes) -> bytes:
    """A ustar archive of one regular file: mode 0644, owner 0:0, mtime 0."""
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def stored_gzip(data: bytes) -> bytes:
    """gzip (RFC 1952) of `data` in stored deflate blocks (RFC 1951 BTYPE 00).

    zlib's compressed output is not specified and differs between zlib and zlib-ng builds,
    which would make the layer digest depend on the machine. Stored blocks are defined
    byte for byte. The module is ~0.5 MB, pulled once per gateway pod, and the Wasm
    artifact variant carries it uncompressed anyway.
    """
    header = b"\x1f\x8b\x08\x00" + b"\0\0\0\0" + b"\x00\xff"  # no flags, mtime 0, OS unknown
    blocks = []
    limit = 0xFFFF
    chunks = [data[start:start + limit] for start in range(0, len(data), limit)] or [b""]
    for index, chunk in enumerate(chunks):
        final = 1 if index == len(chunks) - 1 else 0
        blocks.append(struct.pack("<BHH", final, len(chunk), len(chunk) ^ 0xFFFF) + chunk)
    trailer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return header + b"".join(blocks) + trailer


def manifest_annotations(metadata: dict[str, str]) -> dict[str, str]:
    annotations = {TITLE: metadata["name"], "org.opencontainers.image.version": metadata["version"]}
    if metadata.get("description"):
        annotations["org.opencontainers.image.description"] = metadata["description"]
    if metadata.get("license"):
        annotations["org.opencontainers.image.licenses"] = metadata["license"]
    return annotations


def compat_image(module: bytes, metadata: dict[str, str]) -> tuple[bytes, list[bytes]]:
    """(manifest, blobs) of the compat variant: one tar+gzip layer holding plugin.wasm."""
    layer_tar = single_file_tar(PLUGIN_FILE, module)
    layer = stored_gzip(layer_tar)
    config = canonical_json({
        # The module's own platform (Go's GOOS/GOARCH names, as the OCI spec uses):
        # no engine runs this image; Istio only reads its layer.
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest_of(layer_tar)]},
    })
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor(IMAGE_CONFIG, config),
        "layers": [descriptor(TAR_GZIP_LAYER, layer)],
        "annotations": {**manifest_annotations(metadata), COMPAT_ANNOTATION[0]: COMPAT_ANNOTATION[1]},
    })
    return manifest, [config, layer]


def artifact_image(module: bytes, metadata: dict[str, str]) -> tuple[bytes, list[bytes]]:
    """(manifest, blobs) of the Wasm OCI artifact: runtime config + raw module layers.

    The shape wasme (the spec's reference tool) pushes and Istio's fetcher requires:
    exactly two layers, the runtime config (also the manifest's config) and the module.
    """
    runtime_config = canonical_json({"type": "envoy_proxy", "abiVersions": abi_versions(module)})
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor(WASM_CONFIG, runtime_config),
        "layers": [
            descriptor(WASM_CONFIG, runtime_config, {TITLE: RUNTIME_CONFIG_FILE}),
            descriptor(WASM_CONTENT, module, {TITLE: PLUGIN_FILE}),
        ],
        "annotations": {**manifest_annotations(metadata), "module.wasm.runtime/type": "envoy_proxy"},
    })
    return manifest, [runtime_config, module]


def write_layout(folder: Path, tag: str, manifest: bytes, blobs: list[bytes]) -> str:
    """Replaces `folder` with an OCI image layout holding one manifest tagged `tag`."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        blob_dir = staging / "blobs" / "sha256"
        blob_dir.mkdir(parents=True)
        for blob in [manifest, *blobs]:
            (blob_dir / hashlib.sha256(blob).hexdigest()).write_bytes(blob)
        (staging / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
        entry = descriptor(MANIFEST, manifest, {REF_NAME: tag})
        (staging / "index.json").write_bytes(
            canonical_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]}))
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return digest_of(manifest)


def build(module_path: Path, out: Path, cargo_toml: Path = REPO / "Cargo.toml") -> dict[str, str]:
    """Writes out/compat and out/artifact; returns {variant: manifest digest}."""
    module = read_module(module_path)
    metadata = package_metadata(cargo_toml)
    images = {"compat": compat_image(module, metadata), "artifact": artifact_image(module, metadata)}
    return {variant: write_layout(out / variant, metadata["version"], *image)
            for variant, image in images.items()}


# ---------------------------------------------------------------- push

def shown(path: Path) -> str:
    """The path as the user would type it: relative when under the current folder."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def push(layout: Path, tag: str, image: str, insecure: bool, skopeo_args: list[str]) -> str:
    """skopeo copy of the layout to `image`; returns the digest the registry stored."""
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise SkopeoMissing()
    with tempfile.TemporaryDirectory() as scratch:
        digest_file = Path(scratch) / "digest"
        command = [skopeo, "copy", "--preserve-digests", "--digestfile", str(digest_file)]
        if insecure:
            command.append("--dest-tls-verify=false")
        command += [*skopeo_args, f"oci:{layout}:{tag}", f"docker://{image}"]
        print(f"build.py: pushing {shown(layout)}:{tag} to {image} with skopeo", flush=True)
        if subprocess.run(command, check=False).returncode != 0:
            raise PushFailed(f"skopeo could not push {image} (its message is above)")
        return digest_file.read_text(encoding="utf-8").strip()


def image_name_problem(image: str) -> str | None:
    if "OWNER" in image:
        return f"{image} still holds the placeholder OWNER; name your registry path"
    if not re.match(r"^[a-z0-9][a-z0-9._:-]*(/[a-z0-9][a-z0-9._-]*)+(:[\w][\w.-]{0,127})?$", image):
        return (f"{image} is not a registry image reference like "
                f"ghcr.io/<owner>/canary-tagger:0.1.0 (lower-case path, optional tag, no digest)")
    return None


# ---------------------------------------------------------------- command line

def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(
        description="Build the Wasm OCI images (dist/oci/compat, dist/oci/artifact) and "
                    "optionally push one with skopeo. Options after -- go to skopeo copy.",
        epilog="See the module docstring (head of this file) for details.")
    parser.add_argument("--module", type=Path,
                        default=Path(os.environ.get("CANARY_TAGGER_WASM", DEFAULT_WASM)),
                        help="the Wasm module (default: $CANARY_TAGGER_WASM or dist/canary_tagger.wasm)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where the layouts go (default: dist/oci)")
    parser.add_argument("--push", metavar="IMAGE",
                        help="push to this image reference, e.g. ghcr.io/acme/canary-tagger:0.1.0")
    parser.add_argument("--variant", choices=VARIANTS, default="compat",
                        help="which layout --push sends (default: compat)")
    parser.add_argument("--insecure", action="store_true",
                        help="plain HTTP or unverified TLS to the registry (a local test registry)")
    args = parser.parse_args(argv)

    if args.push is not None:
        problem = image_name_problem(args.push)
        if problem:
            print(f"build.py: {problem}", file=sys.stderr)
            return 2
    try:
        digests = build(args.module, args.out)
        tag = package_metadata(REPO / "Cargo.toml")["version"]
        for variant, digest in digests.items():
            print(f"{shown(args.out / variant)}:{tag}  {digest}")
        if args.push is None:
            print(f"write a digest into the oci:// WasmPlugins:  envoyfilter/fill-sha256.py "
                  f"--oci-layout {shown(args.out / 'compat')}   (or {shown(args.out / 'artifact')})")
            return 0
        pushed = push(args.out / args.variant, tag, args.push, args.insecure, extra)
    except PushFailed as error:
        print(f"build.py: {error}", file=sys.stderr)
        return 1
    except SkopeoMissing as error:
        print(f"build.py: {error}", file=sys.stderr)
        return 3
    except BuildError as error:
        print(f"build.py: {error}", file=sys.stderr)
        return 2
    if pushed != digests[args.variant]:
        print(f"build.py: the registry stored {args.push} as {pushed}, not as the built "
              f"{digests[args.variant]}: it rewrote the manifest, so the sha256 in the "
              f"WasmPlugin would not match. Use a registry that keeps OCI manifests as pushed.",
              file=sys.stderr)
        return 1
    print(f"pushed {args.push} ({args.variant})  manifest digest: {pushed}")
    print(f"write it into the oci:// WasmPlugins:  envoyfilter/fill-sha256.py --oci-digest {pushed}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
