#!/usr/bin/env bash
# Measures the worker's overhead over SEKMET alone (issue #3): a sync of N reports (default 1000)
# against the time SEKMET needs for the same transactions POSTed directly, sequentially.
# Usage: scripts/measure-overhead.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
export REPORTSPLIT_MEASURE_REPORTS="${1:-1000}"
exec cargo test --test it overhead -- --ignored --nocapture --test-threads=1
