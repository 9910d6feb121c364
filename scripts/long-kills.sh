#!/usr/bin/env bash
# The long run of the kill -9 proofs (docs/guarantees.md): the suite's tests
# `proofs::sync_killed_at_random_moments_...` and
# `proofs::backfill_killed_at_random_moments_...` with more rounds (and more
# reports for the backfill, so that every round still has work). Prints the
# figures lines of the tests.
#
# Usage: scripts/long-kills.sh [ROUNDS]   (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/target}"
bash scripts/sekmet.sh --install-only
rounds="${1:-50}"
REPORTSPLIT_KILL_ROUNDS="$rounds" REPORTSPLIT_KILL_BACKFILL_REPORTS=$((rounds * 40)) \
  cargo test -p reportsplit --test it killed_at_random_moments -- --nocapture --test-threads=1 2>&1 \
  | tee /dev/stderr | grep -E 'kill -9' || { echo "no figures: the tests failed" >&2; exit 1; }
