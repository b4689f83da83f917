#!/bin/sh
# The ingestion benchmark from scratch on this machine: a new embedded cluster in STATE
# (removed first), an organization whose limit the run cannot reach, the server in MODE
# (`serve`, or `run` with the worker folding every event into rollups), then
# bench/ingest.sh against it; the server stops at the end.
#   bench/ingest-local.sh [serve|run] [STATE] [CONNECTIONS] [SECONDS] [NAMES]
# BIN overrides the binary (default: .build/release/analyticspro); PORT the HTTP port.
set -eu
MODE=${1:-serve}
STATE=${2:-/tmp/analyticspro-ingest-bench}
CONNECTIONS=${3:-64}
SECONDS_=${4:-20}
NAMES=${5:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-$HERE/../.build/release/analyticspro}
PORT=${PORT:-8080}
case $MODE in serve|run) ;; *) echo "MODE must be serve or run" >&2; exit 2 ;; esac
[ -x "$BIN" ] || { echo "$BIN not found: swift build -c release" >&2; exit 1; }
if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
  echo "port $PORT is taken: stop that server or set PORT" >&2; exit 1
fi
# A cluster left running in STATE (an earlier run killed) is stopped before it is removed.
if [ -f "$STATE/postgres/data/postmaster.pid" ]; then
  kill "$(head -1 "$STATE/postgres/data/postmaster.pid")" 2>/dev/null || true
  sleep 2
fi
rm -rf "$STATE"
mkdir -p "$STATE"
KEY=$(STATE_DIR=$STATE "$BIN" org create bench --tier custom --event-limit 2000000000 2> "$STATE/setup.log" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
STATE_DIR=$STATE PORT=$PORT LOG_LEVEL=warning "$BIN" "$MODE" > "$STATE/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
  sleep 0.2
done
echo "mode=$MODE"
sh "$HERE/ingest.sh" "http://127.0.0.1:$PORT" "$KEY" "$CONNECTIONS" "$SECONDS_" "$NAMES"
