#!/bin/sh
# Ingestion load test: single events, then batches of 100, with wrk (Debian: wrk).
#   bench/ingest.sh URL KEY [CONNECTIONS] [SECONDS] [NAMES]
# Prints name=value lines per phase and checks stored rows against accepted events
# through GET /api/events/stats. KEY needs the write and read permissions (an admin key).
set -eu
URL=${1:?usage: bench/ingest.sh URL KEY [CONNECTIONS] [SECONDS] [NAMES]}
KEY=${2:?usage: bench/ingest.sh URL KEY [CONNECTIONS] [SECONDS] [NAMES]}
CONNECTIONS=${3:-64}
SECONDS_=${4:-20}
NAMES=${5:-1}  # distinct event names the events are spread over
HERE=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)

phase() {  # name batch
  RUN="bench_$1_$(date +%s)"
  echo "phase=$1"
  OUT=$(RUN=$RUN BATCH=$2 NAMES=$NAMES KEY=$KEY wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_}s" --timeout 10s -s "$HERE/ingest.lua" "$URL")
  echo "$OUT" | grep '=' 
  ACCEPTED=$(echo "$OUT" | sed -n 's/^accepted_events=//p')
  sleep 1
  END=$(date -u -d '+1 minute' +%Y-%m-%dT%H:%M:%SZ)
  EVENTS=$RUN
  if [ "$NAMES" -gt 1 ]; then EVENTS=$(seq -s, -f "${RUN}_%g" 0 $((NAMES - 1))); fi
  STORED=$(curl -s -H "Authorization: Bearer $KEY" "$URL/api/events/stats?start=$START&end=$END&event=$EVENTS" |
    python3 -c 'import json,sys; print(sum(r["count"] for r in json.load(sys.stdin)["stats"]))')
  echo "stored_events=$STORED"
  # wrk stops counting at the deadline while up to one request per connection is still
  # in flight: those are stored but their answers are not counted. Nothing accepted may
  # be missing, and nothing beyond those in-flight requests may be extra.
  INFLIGHT=$((CONNECTIONS * $2))
  if [ "$STORED" -ge "$ACCEPTED" ] && [ $((STORED - ACCEPTED)) -le "$INFLIGHT" ]; then
    echo "stored_matches_accepted=yes"
  else
    echo "stored_matches_accepted=NO"
  fi
}

phase single 1
phase batch100 100
