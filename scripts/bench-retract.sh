#!/usr/bin/env bash
# Measures `reportsplit retract` against SEKMET: N seeded reports derived by `sync --once`, then
# the retraction of this build's release (dry run, --apply, a rerun) and the sync that derives the
# reports again. Prints, per step, seconds, reports/s, peak RSS and the summary's counts.
#
# Usage: scripts/bench-retract.sh [N]
#   N  reports to seed (default 1000)
# Env:
#   REPORTSPLIT_BIN  the binary to measure (default $CARGO_TARGET_DIR/debug/reportsplit, built
#                    first with `cargo build`)
#   PORT             SEKMET port (default 8596)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000}"
PORT="${PORT:-8596}"
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="${REPORTSPLIT_BIN:-$TARGET/debug/reportsplit}"
if [ -z "${REPORTSPLIT_BIN:-}" ]; then cargo build -q --bin reportsplit; fi
VERSION="$("$BIN" --version | awk '{print $2}')"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-retract.XXXXXX")"
SERVER_PID=
trap '[ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null || true' EXIT
SERVER_PID="$(SEKMET_DIR="$WORK/sekmet" scripts/sekmet.sh "$PORT" :memory: 2>/dev/null | tail -1)"
python3 scripts/seed-reports.py "http://127.0.0.1:$PORT/fhir" "$N" 2>"$WORK/seed.log"
cat >"$WORK/site.toml" <<TOML
[fhir]
url = "http://127.0.0.1:$PORT/fhir"
timeout_secs = 120
max_concurrent_requests = 8
[pull]
category = ["http://terminology.hl7.org/CodeSystem/v2-0074|RAD"]
page_size = 100
[state]
dir = "$WORK/state"
TOML
SINCE="$(date -u +%Y-%m-%dT%H:%M:%SZ -d '-1 min')"
# The rerun starts earlier, so its window is not the one saved as done: it reads every report again.
EARLIER="$(date -u +%Y-%m-%dT%H:%M:%SZ -d '-2 min')"

step() { # NAME ARGS...
  local name="$1"
  shift
  local start end
  start="$(date +%s.%N)"
  /usr/bin/time -v "$BIN" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || true
  end="$(date +%s.%N)"
  local rss
  rss="$(awk -F: '/Maximum resident/ {printf "%.0f", $2/1024}' "$WORK/$name.err")"
  printf '%-10s %7.1f s  %4s MB  %s\n' "$name" "$(echo "$end - $start" | bc)" "$rss" \
    "$(grep -E 'reports seen' "$WORK/$name.err" | tail -1)"
  grep -E 'Observations (retracted|to retract)' "$WORK/$name.err" | sed 's/^/           /' || true
}

step sync sync --config "$WORK/site.toml" --once
UNTIL="$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)"
step dry-run retract --config "$WORK/site.toml" --version "$VERSION" --since "$SINCE" --until "$UNTIL"
step apply retract --config "$WORK/site.toml" --version "$VERSION" --since "$SINCE" --until "$UNTIL" --apply
step rerun retract --config "$WORK/site.toml" --version "$VERSION" --since "$EARLIER" --until "$UNTIL" --apply
step resync sync --config "$WORK/site.toml" --once
step settled sync --config "$WORK/site.toml" --once
echo "lines printed: dry run $(wc -l <"$WORK/dry-run.out"), apply $(wc -l <"$WORK/apply.out"), rerun $(wc -l <"$WORK/rerun.out")"
