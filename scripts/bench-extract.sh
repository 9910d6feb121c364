#!/usr/bin/env bash
# Measures `reportsplit extract` end to end on NDJSON of DiagnosticReports
# (issue 9's speed target: >= 60,000 reports/s on a 2-core machine).
#
#   scripts/bench-extract.sh [N] [RUNS]      N reports (default 100000), best of RUNS (default 3)
#
# The reports are generated here from our own fixture texts
# (crates/split/tests/fixtures/*.txt, round-robin): every other one carries its
# text as a base64 text/plain presentedForm (what a RIS sends), the others as
# `conclusion`. Each has a distinct id, so the output order can be checked.
# It builds the release binary, then prints for each thread count the best
# wall time, reports/s, and the input and output sizes, and finally one
# single-threaded run with --timings: the CPU time per report spent parsing
# JSON, extracting and serialising.
#
# Environment: CARGO_TARGET_DIR (default: the test script's), BENCH_THREADS
# (default "1 0", 0 meaning one thread per CPU), REPORTSPLIT_BIN (a binary to
# time instead of building one, e.g. an older release to compare with).
#
# Wall times depend on what else runs: on a shared machine compare `user` CPU
# time too (`/usr/bin/time`), or run it when the machine is idle.
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-100000}"
runs="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/target}"
if [ -n "${REPORTSPLIT_BIN:-}" ]; then
    bin="$REPORTSPLIT_BIN"
else
    cargo build --release --locked --quiet --bin reportsplit
    bin="$CARGO_TARGET_DIR/release/reportsplit"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
input="$work/reports.ndjson"

python3 scripts/bench-reports.py "$n" "$input" crates/split/tests/fixtures/*.txt

in_bytes=$(wc -c < "$input")
echo "input: $n reports, $((in_bytes / 1024)) KiB, $(nproc) CPUs"

for threads in ${BENCH_THREADS:-1 0}; do
    best=""
    for _ in $(seq "$runs"); do
        start=$(date +%s.%N)
        if [ -x /usr/bin/time ]; then
            /usr/bin/time -f '%U %S' -o "$work/cpu" \
                "$bin" extract --input ndjson --threads "$threads" "$input" > "$work/out.ndjson"
        else
            "$bin" extract --input ndjson --threads "$threads" "$input" > "$work/out.ndjson"
            echo "0 0" > "$work/cpu"
        fi
        end=$(date +%s.%N)
        secs=$(awk "BEGIN { print $end - $start }")
        if [ -z "$best" ] || awk "BEGIN { exit !($secs < $best) }"; then
            best=$secs
            cpu=$(awk '{ print $1 + $2 }' "$work/cpu")
        fi
    done
    lines=$(wc -l < "$work/out.ndjson")
    [ "$lines" = "$n" ] || { echo "expected $n output lines, got $lines" >&2; exit 1; }
    out_bytes=$(wc -c < "$work/out.ndjson")
    printf 'threads=%s  best of %s: %.3f s  %.0f reports/s  CPU %.2f s (%.0f reports per CPU-second)  output %s KiB (%.2fx the input)\n' \
        "$threads" "$runs" "$best" "$(awk "BEGIN { print $n / $best }")" \
        "$cpu" "$(awk "BEGIN { print ($cpu > 0) ? $n / $cpu : 0 }")" \
        "$((out_bytes / 1024))" "$(awk "BEGIN { print $out_bytes / $in_bytes }")"
done

echo "stage split (one thread; time per report on the extracting thread):"
"$bin" extract --input ndjson --threads 1 --timings "$input" 2>&1 > /dev/null | tail -1
