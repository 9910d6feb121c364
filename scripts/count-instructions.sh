#!/usr/bin/env bash
# Counts the instructions per report of the extraction core and of
# `reportsplit extract` on NDJSON with callgrind: repeatable figures on a
# shared machine, where wall times are noise (issue 9's speed work).
#
#   scripts/count-instructions.sh [core|extract|all]     (default: all)
#
# core:    the `extract` example of reportsplit-split over the Open-i dev
#          reports (../shared/corpus/openi, as the criterion bench reads them),
#          once and twice over; the difference divided by the report count is
#          the steady cost per report inside `extract_with` (lazy one-time set-up
#          and the lexicon left out), and the start-up (the lexicon) is counted
#          on an empty input.
# extract: the release binary on 500 and 2,500 NDJSON DiagnosticReports made as
#          scripts/bench-extract.sh makes them, one thread; the difference per
#          report is everything a report costs (parse, text, extract,
#          serialise, write), and the first run less 500 reports is start-up.
#
# Environment: CARGO_TARGET_DIR (default: the test script's). The callgrind
# files are kept in $OUT (default: a temporary directory, printed) for
# `callgrind_annotate`.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/target}"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
echo "callgrind files in $out"

refs() { grep -o 'refs: *[0-9,]*' "$1" | tr -d ', ' | cut -d: -f2; }

if [ "$what" = core ] || [ "$what" = all ]; then
    cargo build --release --locked --quiet -p reportsplit-split --example extract
    bin="$CARGO_TARGET_DIR/release/examples/extract"
    python3 - "$out" <<'EOF'
import csv, json, sys
out = sys.argv[1]
path = "../shared/corpus/openi/openi_reports_dev.csv"
texts = []
for row in csv.DictReader(open(path, encoding="utf-8", newline="")):
    parts = [f"{h}: {row[c].strip()}" for c, h in (("findings", "FINDINGS"), ("impression", "IMPRESSION")) if (row.get(c) or "").strip()]
    if parts:
        texts.append("\n".join(parts))
for name, copies in (("once", 1), ("twice", 2)):
    with open(f"{out}/openi-{name}.lines", "w", encoding="utf-8") as f:
        for _ in range(copies):
            for text in texts:
                f.write(json.dumps(text) + "\n")
open(f"{out}/empty.lines", "w").close()
print(len(texts), file=open(f"{out}/openi.count", "w"))
EOF
    n=$(cat "$out/openi.count")
    for name in once twice; do
        valgrind --tool=callgrind --toggle-collect='reportsplit_split::extract_with' \
            --callgrind-out-file="$out/core-$name.out" "$bin" --lines "$out/openi-$name.lines" \
            > /dev/null 2> "$out/core-$name.log"
    done
    valgrind --tool=callgrind --callgrind-out-file="$out/core-start.out" "$bin" --lines "$out/empty.lines" \
        > /dev/null 2> "$out/core-start.log"
    once=$(refs "$out/core-once.log")
    twice=$(refs "$out/core-twice.log")
    echo "core: $(( (twice - once) / n )) instructions per Open-i report in extract_with ($n reports);" \
        "start-up (lexicon) $(( $(refs "$out/core-start.log") / 1000000 )) M"
fi

if [ "$what" = extract ] || [ "$what" = all ]; then
    cargo build --release --locked --quiet --bin reportsplit
    bin="$CARGO_TARGET_DIR/release/reportsplit"
    for n in 500 2500; do
        python3 scripts/bench-reports.py "$n" "$out/reports-$n.ndjson" crates/split/tests/fixtures/*.txt
        valgrind --tool=callgrind --callgrind-out-file="$out/extract-$n.out" \
            "$bin" extract --input ndjson --threads 1 "$out/reports-$n.ndjson" \
            > /dev/null 2> "$out/extract-$n.log"
    done
    small=$(refs "$out/extract-500.log")
    large=$(refs "$out/extract-2500.log")
    per=$(( (large - small) / 2000 ))
    echo "extract: $per instructions per NDJSON report (one thread);" \
        "start-up $(( (small - 500 * per) / 1000000 )) M"
fi
