#!/usr/bin/env bash
# The long MLLP run (docs/hl7.md, "Tests"): the suite's ignored test `hl7::long_mllp_with_kill`,
# run twice on a release build:
#   1. the `reportsplit mllp` binary with its writer against SEKMET, MESSAGES messages over
#      CONNECTIONS connections, the listener killed with SIGKILL when half are acknowledged and
#      started again; every sender resends what was not acknowledged; then every message
#      acknowledged AA is on the server exactly once. Prints messages/s end to end and the ACK
#      latency p50/p99.
#   2. the same listener without its writer (--spool-only): the listener and the spool alone.
#
# Usage: scripts/long-mllp.sh [MESSAGES] [CONNECTIONS]   (default 1000 10)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/target}"
bash scripts/sekmet.sh --install-only
export HL7_LONG_MESSAGES="${1:-1000}" HL7_LONG_CONNECTIONS="${2:-10}"
for spool_only in 0 1; do
  HL7_LONG_SPOOL_ONLY=$spool_only cargo test --release -p reportsplit --test it hl7::long_mllp_with_kill \
    -- --ignored --nocapture --test-threads=1 2>&1 \
    | tee /dev/stderr | grep -E 'messages, .* connections|end to end|killed the listener' \
    || { echo "no figures: the test failed" >&2; exit 1; }
done
