#!/usr/bin/env bash
# The demo: starts a local SEKMET FHIR server (in memory), loads the sample radiology
# reports in demo/seed-bundle.json (written for this project), runs one sync, runs it
# again to show that nothing is written twice, and prints the Observations written.
#
# Usage: scripts/demo.sh [--keep]     --keep leaves the server running afterwards
# Env:   DEMO_PORT (default 8097)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/target}"
PORT="${DEMO_PORT:-8097}"
BASE="http://127.0.0.1:$PORT/fhir"
KEEP="${1:-}"

echo "== building reportsplit"
cargo build --locked --quiet
BIN="$CARGO_TARGET_DIR/debug/reportsplit"

echo "== starting SEKMET (strict validation) at $BASE"
PID="$(bash scripts/sekmet.sh "$PORT" | tail -n 1)"
if [ "$KEEP" != "--keep" ]; then
  trap 'kill "$PID" 2>/dev/null || true' EXIT
fi

echo "== loading $(grep -c '"resourceType": "DiagnosticReport"' demo/seed-bundle.json) sample DiagnosticReports"
curl -sf -X POST -H 'Content-Type: application/fhir+json' --data @demo/seed-bundle.json "$BASE" >/dev/null

STATE="$(mktemp -d)"
export REPORTSPLIT_FHIR_URL="$BASE" REPORTSPLIT_STATE_DIR="$STATE"
echo "== reportsplit sync --once"
"$BIN" sync --config config/sekmet-local.toml --once
echo "== reportsplit sync --once (again: everything is current, nothing is written)"
"$BIN" sync --config config/sekmet-local.toml --once

echo "== what was written"
python3 scripts/show-results.py "$BASE"
if [ "$KEEP" = "--keep" ]; then
  echo "SEKMET keeps running at $BASE (pid $PID)"
fi
