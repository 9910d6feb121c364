#!/usr/bin/env bash
# Installs (once, into a cache dir) and starts a SEKMET FHIR R4 server on loopback for the demo and
# the integration tests. SEKMET is the PyPI package sekmet-fhir (FastAPI + SQLite, Apache-2.0); its
# own dependencies are unpinned, so it is installed from the pinned list beside this script.
#
# Usage: scripts/sekmet.sh [PORT] [DB]
#        scripts/sekmet.sh --install-only     install (or check) the venv and exit
#   PORT  default 8090;  DB  a SQLite file path, or :memory: (default)
# Env:
#   SEKMET_VALIDATION  strict | warn | off   (default strict: invalid resources are rejected)
#   SEKMET_CACHE       where the venv is installed (default ${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/sekmet),
#                      reused between runs (CI caches it)
#   SEKMET_DIR         where settings, data and logs of this instance go (default $SEKMET_CACHE/run)
#   SEKMET_EXTRA_YAML  extra YAML appended to the settings (e.g. a server_auth block)
#   SEKMET_CLOCK       "seconds": store meta.lastUpdated with whole-second precision, as many servers
#                      do, so that resources written close together share a timestamp (the paging
#                      test needs many equal _lastUpdated values). Default: SEKMET's milliseconds.
# Prints the server's PID as the last line of stdout; writes $SEKMET_DIR/server-PORT.{pid,log}.
# Stop it with: kill "$(cat "$SEKMET_DIR/server-PORT.pid")"
set -euo pipefail
INSTALL_ONLY=
if [ "${1:-}" = "--install-only" ]; then INSTALL_ONLY=1; shift; fi
PORT="${1:-8090}"
DB="${2:-:memory:}"
CACHE="${SEKMET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reportsplit/sekmet}"
DIR="${SEKMET_DIR:-$CACHE/run}"
VENV="$CACHE/venv"
REQUIREMENTS="$(cd "$(dirname "$0")" && pwd)/sekmet-requirements.txt"
mkdir -p "$CACHE" "$DIR"
# Install under a lock so that parallel test processes do not build the venv twice; the stamp
# records which pin list the venv was built from, so a changed list rebuilds it.
STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
(
  flock 9
  if [ ! -x "$VENV/bin/sekmet" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" >&2
    echo "$WANT" >"$STAMP"
  fi
) 9>"$CACHE/install.lock"
[ -z "$INSTALL_ONLY" ] || exit 0
cat >"$DIR/settings-$PORT.yaml" <<YAML
base_url: http://127.0.0.1:$PORT/fhir
host: 127.0.0.1
port: $PORT
data_dir: $DIR/data-$PORT
db_path: "$DB"
simulator:
  enabled: false
log_inbound: false
validation:
  inbound: "${SEKMET_VALIDATION:-strict}"  # quoted: YAML reads a bare off as false
${SEKMET_EXTRA_YAML:-}
YAML
if [ "${SEKMET_CLOCK:-}" = seconds ]; then
  # Same server, with its timestamp function truncated to the second before it starts.
  SEKMET_CONFIG="$DIR/settings-$PORT.yaml" nohup "$VENV/bin/python" -c '
import sys
import sekmet.fhir.common as common, sekmet.fhir.store as store
exact = common.instant
common.instant = store.instant = lambda dt=None: exact(dt)[:19] + ".000Z"
from sekmet.cli import app
sys.argv = ["sekmet", "serve"]
app()' >"$DIR/server-$PORT.log" 2>&1 &
else
  SEKMET_CONFIG="$DIR/settings-$PORT.yaml" nohup "$VENV/bin/sekmet" serve >"$DIR/server-$PORT.log" 2>&1 &
fi
PID=$!
echo "$PID" >"$DIR/server-$PORT.pid"
for _ in $(seq 1 300); do
  if curl -sf -o /dev/null "http://127.0.0.1:$PORT/fhir/metadata"; then
    echo "SEKMET up at http://127.0.0.1:$PORT/fhir (pid $PID)" >&2
    echo "$PID"
    exit 0
  fi
  kill -0 "$PID" 2>/dev/null || { cat "$DIR/server-$PORT.log" >&2; exit 1; }
  sleep 0.1
done
echo "SEKMET did not answer in 30 s" >&2
kill "$PID"
exit 1
