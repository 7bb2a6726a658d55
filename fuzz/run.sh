#!/usr/bin/env bash
# Runs fuzz targets for a bounded time each, one after the other (docs/fuzzing.md).
#
#   fuzz/run.sh SECONDS [TARGET...]      (from the repository root; all targets by default)
#
# Each target starts from its committed seeds (fuzz/seeds/TARGET) and what earlier runs
# kept (fuzz/corpus/TARGET, ignored by git); `config` also from every plugin configuration
# in the repository, read where it lives, and a dictionary of the configuration's field
# names taken from its JSON Schema. A crash stops the run with the input saved under
# fuzz/artifacts/TARGET/ and the fuzzer's report printed. Prints one summary line a target.
set -euo pipefail

seconds="${1:?usage: fuzz/run.sh SECONDS [TARGET...]}"
shift
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
sanitizer="${FUZZ_SANITIZER:-none}"

cargo +nightly fuzz build -s "$sanitizer"

# Every configuration in the repository: shipped examples, benchmark and test fixtures.
configs=fuzz/corpus/repo-configs
rm -rf "$configs" && mkdir -p "$configs"
dirs=()
for dir in envoyfilter bench tests fixtures fuzz/configs; do [ -d "$dir" ] && dirs+=("$dir"); done
find "${dirs[@]}" -name '*.json' ! -name '*.schema.json' ! -name requests.json | while read -r file; do
  cp "$file" "$configs/$(tr / _ <<<"$file")"
done
python3 fuzz/config_dict.py envoyfilter/config.schema.json >fuzz/corpus/config.dict

printf '%-11s %12s %10s %8s %8s %8s\n' target executions exec/s cov ft corpus
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
  extra=()
  if [ "$target" = config ]; then
    extra=("$configs")
    flags=(-dict=fuzz/corpus/config.dict)
  else
    flags=()
  fi
  log="fuzz/corpus/$target.log"
  if ! cargo +nightly fuzz run -s "$sanitizer" "$target" "fuzz/corpus/$target" \
    "fuzz/seeds/$target" "${extra[@]}" -- -max_total_time="$seconds" -timeout=10 \
    -print_final_stats=1 "${flags[@]}" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/ (log: $log)"
    exit 1
  fi
  done_line="$(grep -E '^#[0-9]+\s+DONE' "$log" | tail -n 1)"
  runs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')"
  speed="$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$')"
  cov="$(grep -oE 'cov: [0-9]+' <<<"$done_line" | grep -oE '[0-9]+')"
  ft="$(grep -oE 'ft: [0-9]+' <<<"$done_line" | grep -oE '[0-9]+')"
  corpus="$(grep -oE 'corp: [0-9]+' <<<"$done_line" | grep -oE '[0-9]+')"
  printf '%-11s %12s %10s %8s %8s %8s\n' "$target" "$runs" "$speed" "$cov" "$ft" "$corpus"
done
