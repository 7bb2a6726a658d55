#!/usr/bin/env bash
# make bench: engine micro-benchmarks (criterion) + real-Envoy load comparison.
# Not part of `make test`. Results and their meaning: BENCHMARKS.md.
#
#   make bench                                 everything; make builds the modules and installs
#                                              the load generators first (make bench-deps)
#   BENCH_JOBS=h1,grpc make bench              a subset of the Envoy jobs (h1 h2 grpc upstream)
#   BENCH_ROUNDS=8 BENCH_SECONDS=3             rounds and seconds per measurement (defaults)
#   BENCH_SKIP_CRITERION=1 / BENCH_SKIP_ENVOY=1   run only one half
#
# Runs `cargo bench --bench engine`, then bench/envoy_bench.py (arguments are passed on).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
# One stamp for both halves: bench/results/<stamp>-criterion.* and <stamp>-envoy.*
export BENCH_STAMP="${BENCH_STAMP:-$(date +%Y%m%d-%H%M%S)}"

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
