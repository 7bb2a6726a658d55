#!/usr/bin/env bash
# Build (and with --push, push) the canary-tagger Wasm image from dist/canary_tagger.wasm.
#
#   envoyfilter/oci/build.sh [--push] [IMAGE]
#
# IMAGE defaults to $IMAGE, else (build only) localhost/canary-tagger:<Cargo.toml version>.
# --push needs your registry path, e.g. ghcr.io/<owner>/canary-tagger:0.1.0: the one the
# WasmPlugin url names (oci://ghcr.io/OWNER/... in the manifests, OWNER to be replaced).
# The module comes from $CANARY_TAGGER_WASM, else dist/canary_tagger.wasm (`make wasm`).
#
# Uses the first builder that works: buildah, podman, or docker with a reachable engine.
# None available: says what is missing and exits 3. Module missing: exits 2.
# After --push it prints the manifest digest for the WasmPlugin's sha256 field and the
# fill-sha256.py command that writes it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
annotation="module.wasm.image/variant=compat"

push=0
image="${IMAGE:-}"
for arg in "$@"; do
  case "$arg" in
    --push) push=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    -*) echo "build.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    *) image="$arg" ;;
  esac
done
if [ -z "$image" ]; then
  if [ "$push" = 1 ]; then
    echo "build.sh: --push needs the image to push, e.g. build.sh --push ghcr.io/<owner>/canary-tagger:0.1.0" >&2
    exit 2
  fi
  version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$repo/Cargo.toml" 2>/dev/null | head -n 1)"
  image="localhost/canary-tagger:${version:-0.1.0}"
fi
case "$image" in
  *OWNER*) echo "build.sh: $image still holds the placeholder OWNER; name your registry path" >&2; exit 2 ;;
esac

wasm="${CANARY_TAGGER_WASM:-$repo/dist/canary_tagger.wasm}"
if [ ! -f "$wasm" ]; then
  echo "build.sh: the module $wasm does not exist. Build it first: make wasm" >&2
  exit 2
fi

# Pick a builder: the first one that can actually build here.
builder=""
missing=()
if command -v buildah >/dev/null 2>&1; then
  builder=buildah
else
  missing+=("buildah: not installed")
fi
if [ -z "$builder" ]; then
  if command -v podman >/dev/null 2>&1; then builder=podman; else missing+=("podman: not installed"); fi
fi
if [ -z "$builder" ]; then
  if ! command -v docker >/dev/null 2>&1; then
    missing+=("docker: not installed")
  elif ! docker info >/dev/null 2>&1; then
    missing+=("docker: the CLI is installed but no Docker engine answers (docker info failed; is dockerd running and may this user reach its socket?)")
  else
    builder=docker
  fi
fi
if [ -z "$builder" ]; then
  {
    echo "build.sh: no container builder available, so the image $image was not built."
    for reason in "${missing[@]}"; do echo "  - $reason"; done
    echo "Install one of them (for example: apt-get install buildah), or skip the image:"
    echo "wasmplugin-file.yaml in each envoyfilter/ folder mounts the module as a file instead."
  } >&2
  exit 3
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$here/Dockerfile" "$context/Dockerfile"
cp "$wasm" "$context/plugin.wasm"
digest_file="$context/digest"

echo "build.sh: building $image with $builder from $wasm"
case "$builder" in
  buildah)
    buildah build --format oci --annotation "$annotation" -t "$image" "$context"
    if [ "$push" = 1 ]; then buildah push --digestfile "$digest_file" "$image"; fi
    ;;
  podman)
    podman build --format oci --annotation "$annotation" -t "$image" "$context"
    if [ "$push" = 1 ]; then podman push --digestfile "$digest_file" "$image"; fi
    ;;
  docker)
    # Docker media types (application/vnd.docker.*): the compat variant needs no annotation.
    docker build -t "$image" "$context"
    if [ "$push" = 1 ]; then
      docker push "$image"
      docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$image" \
        | sed -n 's/.*@//p' | head -n 1 > "$digest_file"
    fi
    ;;
esac

if [ "$push" = 1 ]; then
  digest="$(tr -d '[:space:]' < "$digest_file")"
  echo "build.sh: pushed $image"
  echo "manifest digest: $digest"
  echo "write it into the oci:// WasmPlugins:  envoyfilter/fill-sha256.py --oci-digest $digest"
else
  echo "build.sh: built $image (not pushed; add --push)"
fi
