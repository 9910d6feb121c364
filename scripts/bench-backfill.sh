#!/usr/bin/env bash
# Measures `reportsplit backfill` throughput (reports/s) and peak RSS against SEKMET, at several
# concurrency levels, each on an identical copy of one seeded database.
#
# Usage: scripts/bench-backfill.sh [N] [LEVELS]
#   N       reports to seed (default 10000)
#   LEVELS  concurrency levels (default "1 4 16")
# Env:
#   REPORTSPLIT_BIN  the binary to measure (default $CARGO_TARGET_DIR/debug/reportsplit, built
#                    first with `cargo build`; set it to a release build to measure that)
#   PORT             SEKMET port (default 8595)
#   BY               last-updated (default) or date
#   WINDOW           backfill window (default 1d)
#   DB               SEKMET database: :memory: (default) or a file path (removed before each level)
# Prints one line per level: concurrency, reports, seconds, reports/s, peak RSS (MB).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10000}"
LEVELS="${2:-1 4 16}"
PORT="${PORT:-8595}"
BY="${BY:-last-updated}"
WINDOW="${WINDOW:-1d}"
DB="${DB:-:memory:}"
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="${REPORTSPLIT_BIN:-$TARGET/debug/reportsplit}"
if [ -z "${REPORTSPLIT_BIN:-}" ]; then cargo build -q --bin reportsplit; fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-backfill.XXXXXX")"
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    SERVER_PID=
  fi
}
trap 'stop_server' EXIT
start_server() { # DB
  SERVER_PID="$(SEKMET_DIR="$WORK/sekmet" scripts/sekmet.sh "$PORT" "$1" 2>/dev/null | tail -1)"
}

printf '%-12s %-8s %-9s %-10s %-10s\n' concurrency reports seconds reports/s peak_RSS_MB
for level in $LEVELS; do
  run="$WORK/c$level"
  mkdir -p "$run"
  [ "$DB" = ":memory:" ] || rm -f "$DB" "$DB-wal" "$DB-shm"
  # A fresh server per level, seeded identically (same ids, texts and dates).
  start_server "$DB"
  python3 scripts/seed-reports.py "http://127.0.0.1:$PORT/fhir" "$N" 2>"$run/seed.log"
  cat >"$run/site.toml" <<TOML
[fhir]
url = "http://127.0.0.1:$PORT/fhir"
timeout_secs = 120
max_concurrent_requests = 16
[pull]
category = ["http://terminology.hl7.org/CodeSystem/v2-0074|RAD"]
page_size = 100
[state]
dir = "$run/state"
TOML
  /usr/bin/time -v "$BIN" backfill --config "$run/site.toml" --since 2000-01-01 \
      --by "$BY" --window "$WINDOW" --concurrency "$level" --log-every 60s \
      >"$run/stdout" 2>"$run/stderr" || echo "level $level: exit $?" >&2
  stop_server
  summary="$(grep -E 'reports/s\)' "$run/stderr" | tail -1)"
  seen="$(grep -oE '^[0-9]+ reports seen' "$run/stderr" | tail -1 | cut -d' ' -f1)"
  secs="$(sed -nE 's/.*; ([0-9.]+) s \(([0-9.]+) reports\/s\).*/\1/p' <<<"$summary")"
  rate="$(sed -nE 's/.*; ([0-9.]+) s \(([0-9.]+) reports\/s\).*/\2/p' <<<"$summary")"
  rss_kb="$(sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+).*/\1/p' "$run/stderr")"
  printf '%-12s %-8s %-9s %-10s %-10s\n' "$level" "${seen:-?}" "${secs:-?}" "${rate:-?}" \
    "$(( ${rss_kb:-0} / 1024 ))"
done
echo "logs: $WORK" >&2
