#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ one after another (the machine's cores
# are shared: at `nice -n 19`), and prints each target's executions and time.
#
# Usage: scripts/fuzz.sh [--ci] [--cmin] [SECONDS] [TARGET...]
#   SECONDS   per target (default 600: the figure docs/guarantees.md publishes)
#   --ci      ~20 s per target on a scratch corpus seeded from the committed one
#             (scripts/test.sh runs this when cargo-fuzz is installed)
#   --cmin    after the runs, minimise the committed corpora (`cargo fuzz cmin`)
#   TARGET    extract, report_text, fhir_input, attachment, hl7 (default: all five)
# New inputs of a full run go into fuzz/corpus/TARGET (commit them after --cmin);
# a crash leaves its input in fuzz/artifacts/TARGET and ends the script with exit 1.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); exit 3 when it is absent. The
# stable toolchain is enough: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its
# nightly-only flags. No sanitizer (the crates are safe Rust); debug assertions
# on, so an arithmetic overflow is a crash too.
# Env: FUZZ_TARGET_DIR (default ${CARGO_TARGET_DIR:-fuzz/target}/fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
ci= cmin= seconds=600 targets=()
for arg in "$@"; do
  case "$arg" in
    --ci) ci=1; seconds=20 ;;
    --cmin) cmin=1 ;;
    ''|*[!0-9]*) targets+=("$arg") ;;
    *) seconds="$arg" ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(extract report_text fhir_input attachment hl7)
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is not installed (cargo install cargo-fuzz); the corpora are replayed by cargo test" >&2
  exit 3
fi
export RUSTC_BOOTSTRAP=1
target_dir="${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/fuzz/target}/fuzz}"
unset CARGO_TARGET_DIR
fuzz=(nice -n 19 cargo fuzz)
options=(--sanitizer none --debug-assertions --target-dir "$target_dir")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  if [ -n "$ci" ]; then
    # New inputs go to the scratch directory; the committed corpus is only read.
    dirs=("$scratch/$target" "$corpus")
    mkdir -p "$scratch/$target"
  else
    dirs=("$corpus")
  fi
  log="$scratch/$target.log"
  status=0
  "${fuzz[@]}" run "${options[@]}" "$target" "${dirs[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  # A crash has no final line: the greps find nothing, which must not end the script
  # before it prints the crash.
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 || true)
  echo "fuzz $target: ${runs:-?} executions in ${seconds} s (${took:-no final line}), exit $status"
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    exit 1
  fi
done
if [ -n "$cmin" ]; then
  for target in "${targets[@]}"; do
    # Edges only (no hit counts, comparisons or value profiles): a small corpus to commit
    # that still reaches every edge the full one reaches.
    "${fuzz[@]}" cmin "${options[@]}" "$target" "fuzz/corpus/$target" -- \
      -use_counters=0 -use_cmp=0 -use_value_profile=0 >"$scratch/cmin.log" 2>&1 \
      || { tail -20 "$scratch/cmin.log" >&2; exit 1; }
    echo "fuzz $target: corpus minimised to $(ls "fuzz/corpus/$target" | wc -l) inputs, $(du -sh "fuzz/corpus/$target" | cut -f1)"
  done
fi
