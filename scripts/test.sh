#!/usr/bin/env bash
# Runs every check and test of reportsplit: formatting, clippy, unit, snapshot,
# property and integration tests. Integration tests start their own SEKMET FHIR
# servers on 127.0.0.1 (scripts/sekmet.sh); this script installs SEKMET, the
# MLLP peer (scripts/mllp-send.sh) and the FHIR validator (scripts/medplum.sh)
# first so that parallel tests do not race to install them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Reuse build output between runs on the same machine; a fresh machine builds from scratch.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== installing the test FHIR server (SEKMET)"
bash scripts/sekmet.sh --install-only
echo "== installing the MLLP peer of the listener's tests (python-hl7's mllp_send)"
bash scripts/mllp-send.sh --install-only
echo "== installing the FHIR validator (@medplum/core, needs node and npm)"
# exit 3: node/npm absent (the script says so; the validation test skips with a message)
medplum=0
bash scripts/medplum.sh --install-only || medplum=$?
[ "$medplum" -eq 0 ] || [ "$medplum" -eq 3 ] || exit "$medplum"
echo "== deployment files (hadolint, kubernetes-validate; scripts/lint-deploy.sh)"
bash scripts/lint-deploy.sh
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
# The fuzz targets briefly (~20 s each), only where cargo-fuzz is installed; everywhere
# else `cargo test` has already replayed their committed corpora (*/tests/fuzz_corpus.rs).
if cargo fuzz --version >/dev/null 2>&1; then
  echo "== fuzzing (scripts/fuzz.sh --ci)"
  bash scripts/fuzz.sh --ci
else
  echo "== fuzzing skipped: cargo-fuzz is not installed (the corpora were replayed by cargo test)"
fi
