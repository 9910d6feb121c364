#!/usr/bin/env bash
# Runs python-hl7's `mllp_send` (pinned in python-hl7-requirements.txt beside this script),
# installing it once into a venv under the cache, like scripts/sekmet.sh does for SEKMET.
#
# Usage: scripts/mllp-send.sh [mllp_send options] HOST      e.g. -p 2575 -f messages.mllp 127.0.0.1
#        scripts/mllp-send.sh --install-only                 install (or check) the venv and exit
# Env:   PYTHON_HL7_CACHE  where the venv goes (default ${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/python-hl7)
# Prints each ACK received on stdout (mllp_send's own output).
set -euo pipefail
CACHE="${PYTHON_HL7_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/python-hl7}"
VENV="$CACHE/venv"
REQUIREMENTS="$(cd "$(dirname "$0")" && pwd)/python-hl7-requirements.txt"
mkdir -p "$CACHE"
STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
(
  flock 9
  if [ ! -x "$VENV/bin/mllp_send" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" >&2
    echo "$WANT" >"$STAMP"
  fi
) 9>"$CACHE/.install.lock"
if [ "${1:-}" = "--install-only" ]; then exit 0; fi
exec "$VENV/bin/mllp_send" "$@"
