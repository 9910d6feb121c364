#!/usr/bin/env bash
# The fleet's figures (issue 14): first the kill run at N reports (4 workers, one killed with
# SIGKILL mid-window, every report enriched exactly once), then `reportsplit backfill --state
# postgres://…` at 1, 2 and 4 worker
# processes on one SEKMET and one PostgreSQL, each on an identically seeded server; throughput as a
# ratio to 1 worker in the same run, the time SEKMET alone needs for the same transactions (POSTed
# one after the other, as scripts/measure-overhead.sh does), and PostgreSQL round trips per report.
#
# Usage: scripts/bench-fleet.sh [N]      N reports (default 2000)
# Needs PostgreSQL on 127.0.0.1:5432 (trust; REPORTSPLIT_TEST_PG_URL names another maintenance
# database). Each run makes a database of its own and drops it. The workers are the debug build of
# `cargo test` (the test binary's reportsplit); the figures are ratios within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
export REPORTSPLIT_FLEET_REPORTS="${1:-2000}"
cargo test --test it fleet::four_workers_share_a_range -- --nocapture --test-threads=1
exec cargo test --test it fleet_throughput -- --ignored --nocapture --test-threads=1
