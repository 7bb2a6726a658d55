#!/usr/bin/env bash
# make bench: engine micro-benchmarks (criterion) + real-Envoy load comparison.
# Not part of `make test`. Results and their meaning: BENCHMARKS.md.
#
#   bash bench/run.sh                          everything (needs dist/canary_tagger.wasm: make wasm)
#   BENCH_VARIANTS=none,lua,empty-wasm bash bench/run.sh   a subset of the Envoy variants
#   BENCH_ROUNDS=8 BENCH_SECONDS=3             rounds and seconds per measurement (defaults)
#   BENCH_SKIP_CRITERION=1 / BENCH_SKIP_ENVOY=1   run only one half
#
# Installs what it needs when missing (wrk, h2load, wasm-opt: Debian packages), builds the
# empty proxy-wasm filter, runs `cargo bench --bench engine`, then bench/envoy_bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
# One stamp for both halves: bench/results/<stamp>-criterion.* and <stamp>-envoy.*
export BENCH_STAMP="${BENCH_STAMP:-$(date +%Y%m%d-%H%M%S)}"

# ---------------------------------------------------------------- tools (idempotent)
missing=""
for pair in wrk:wrk nghttp2-client:h2load binaryen:wasm-opt; do
  pkg="${pair%%:*}"; cmd="${pair##*:}"
  command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "bench: installing Debian packages:$missing"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

PY=.venv/bin/python
[ -x "$PY" ] || { echo "bench: no $PY; run 'make venv' (make bench does)"; exit 1; }

# ---------------------------------------------------------------- engine benches
if [ "${BENCH_SKIP_CRITERION:-0}" != 1 ]; then
  # --no-default-features: the engine bench needs no CLI, and without the `cli` feature
  # cargo does not build the binary (in the bench profile the cdylib+rlib library is
  # otherwise built twice and the binary fails to link).
  echo "bench: cargo bench --bench engine --no-default-features"
  cargo bench --bench engine --no-default-features -- --noplot 2>&1 | tee bench/criterion.log
  "$PY" bench/criterion_summary.py
fi

# ---------------------------------------------------------------- Envoy load comparison
if [ "${BENCH_SKIP_ENVOY:-0}" != 1 ]; then
  # dist/canary_tagger.wasm and the empty-filter baselines come from `make wasm bench-modules`
  # (make bench builds them first).
  "$PY" bench/envoy_bench.py "$@"
fi

echo "bench: done in $((SECONDS - start)) s"
