#!/usr/bin/env bash
# The long MLLP run (docs/hl7.md, "Tests"): the suite's ignored test `hl7::long_mllp_with_kill`,
# run twice on a release build:
#   1. the `reportsplit mllp` binary with its writer against SEKMET, MESSAGES messages over
#      CONNECTIONS connections, the listener killed with SIGKILL when half are acknowledged and
#      started again; every sender resends what was not acknowledged; then every message
#      acknowledged AA is on the server exactly once. Prints messages/s end to end and the ACK
#      latency p50/p99.
#   2. the same listener without its writer (--spool-only): the listener and the spool alone.
# Both with the spool directory, then both again with the spool in PostgreSQL (`--state`, a
# database of its own on REPORTSPLIT_TEST_PG_URL's server, default 127.0.0.1:5432, dropped after).
#
# Usage: scripts/long-mllp.sh [MESSAGES] [CONNECTIONS]   (default 1000 10)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/target}"
bash scripts/sekmet.sh --install-only
export HL7_LONG_MESSAGES="${1:-1000}" HL7_LONG_CONNECTIONS="${2:-10}"
admin="${REPORTSPLIT_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
run() {
  cargo test --release -p reportsplit --test it hl7::long_mllp_with_kill \
    -- --ignored --nocapture --test-threads=1 2>&1 \
    | tee /dev/stderr | grep -E 'messages, .* connections|end to end|killed the listener' \
    || { echo "no figures: the test failed" >&2; exit 1; }
}
for spool_only in 0 1; do
  HL7_LONG_SPOOL_ONLY=$spool_only run
done
for spool_only in 0 1; do
  db="reportsplit_longmllp_$$_$spool_only"
  psql "$admin" -qc "CREATE DATABASE $db"
  HL7_LONG_SPOOL_ONLY=$spool_only HL7_LONG_STATE_URL="${admin%/*}/$db" run
  psql "$admin" -qc "DROP DATABASE $db WITH (FORCE)"
done
