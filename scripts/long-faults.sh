#!/usr/bin/env bash
# The long run of the fault-injection proof (docs/guarantees.md): the suite's
# test `proofs::injected_faults_leave_every_report_enriched_exactly_once`
# with 1,000 reports instead of 200, through a proxy that fails 20 % of the
# requests (500, 503, 429 + Retry-After, dropped connections, replies dropped
# after the server committed). Prints the figures line of the test.
#
# Usage: scripts/long-faults.sh [REPORTS]   (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/target}"
bash scripts/sekmet.sh --install-only
REPORTSPLIT_FAULT_REPORTS="${1:-1000}" cargo test -p reportsplit --test it \
  proofs::injected_faults_leave_every_report_enriched_exactly_once -- --exact --nocapture 2>&1 \
  | tee /dev/stderr | grep -E '^faults ' || { echo "no figures: the test failed" >&2; exit 1; }
