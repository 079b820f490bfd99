#!/usr/bin/env bash
# Two builds of `citecast serve` measured side by side in one run, on the same data and
# the same machine, alternating A B A B so that drift of the machine shows as the spread
# within each build rather than as a difference between them.
#
#   bash benches/side_by_side.sh OLD_BINARY NEW_BINARY
#
# One data directory is filled once (the bundled data, by NEW's first start) and copied
# for every run. Each run starts the binary, creates one enterprise key with its CLI
# (limits raised out of reach, as in load.sh), and runs wrk for WRK_DURATION on each of
# /v1/papers/{id} (300 ids), /v1/search (20 queries) and
# /v1/papers/{id}/forecast?mode=at_publication, after a WRK_WARMUP warm-up; then stops it.
# Prints req/s and p99 per endpoint, run and build.
#
# Settings: ROUNDS (default 2), WRK_DURATION (10s), WRK_WARMUP (3s), WRK_CONNECTIONS (64),
# PORT (18090). wrk and the server share the machine's cores.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OLD=$(realpath "$1")
NEW=$(realpath "$2")
ROUNDS=${ROUNDS:-2}
WRK_DURATION=${WRK_DURATION:-10s}
WRK_WARMUP=${WRK_WARMUP:-3s}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-64}
PORT=${PORT:-18090}
ADDR=127.0.0.1:$PORT
BASE=http://$ADDR
WORK=$(mktemp -d)
trap 'pkill -f "serve --data-dir $WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }; }

# The enterprise tier's limits out of reach, as in load.sh (exports CITECAST_TIERS).
BIN=$NEW
# shellcheck source=benches/lib.sh
source benches/lib.sh
raise_enterprise_limits "$WORK/tiers.json" >/dev/null
# One key is one caller: let it hold every connection (the default allows 32 in flight
# per caller, and the rest would be 429s).
export CITECAST_MAX_IN_FLIGHT_PER_CALLER=$((WRK_CONNECTIONS * 2))

serve() { # BIN DATA LOG
  CITECAST_LOG=warn "$1" serve --data-dir "$2" --addr "$ADDR" >"$3" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 1200); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz" || true) == 200 ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$3" >&2; exit 1; }
    sleep 0.5
  done
  echo "not ready" >&2
  exit 1
}

stop() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# The data, once.
serve "$NEW" "$WORK/base" "$WORK/base.log"
# Let the first start's warm-up finish before the copy.
for _ in $(seq 1 240); do
  curl -s "$BASE/readyz" | grep -q '"forecasts":"ready"' && break
  sleep 0.5
done
stop
rm -f "$WORK/base/server.json"

# Ids: every 98th stored paper (about 300), from the bundled papers file.
python3 - "$WORK/ids.txt" <<'PY'
import gzip, json, sys
ids = []
with gzip.open("data/papers.jsonl.gz", "rt") as f:
    for i, line in enumerate(f):
        if i % 98 == 0:
            p = json.loads(line)
            ids.append(p.get("arxiv_id") or p["id"])
open(sys.argv[1], "w").write("\n".join(ids[:300]) + "\n")
PY

lua_ids() { # FILE SUFFIX KEY
  {
    echo "local ids = {"
    sed 's/.*/  "&",/' "$WORK/ids.txt"
    echo "}"
    echo 'local n = 0'
    echo "wrk.headers[\"Authorization\"] = \"Bearer $3\""
    echo 'request = function() n = n + 1; return wrk.format("GET", "/v1/papers/" .. ids[(n % #ids) + 1] .. "'"$2"'") end'
  } >"$1"
}

lua_search() { # FILE KEY
  {
    echo 'local qs = {"black+hole+entropy", "string+duality", "ads+cft", "supersymmetry+breaking", "d-branes",'
    echo '  "matrix+model", "conformal+field+theory", "gauge+theory", "noncommutative", "tachyon+condensation",'
    echo '  "m+theory", "holography", "instantons", "cosmological+constant", "brane+world", "orientifold",'
    echo '  "topological+string", "seiberg+witten", "calabi+yau", "chern+simons"}'
    echo 'local n = 0'
    echo "wrk.headers[\"Authorization\"] = \"Bearer $2\""
    echo 'request = function() n = n + 1; return wrk.format("GET", "/v1/search?q=" .. qs[(n % #qs) + 1]) end'
  } >"$1"
}

measure() { # SCRIPT -> "req/s p99"
  wrk -t2 -c"$WRK_CONNECTIONS" -d"$WRK_WARMUP" -s "$1" "$BASE" >/dev/null 2>&1 || true
  wrk -t2 -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" --latency -s "$1" "$BASE" >"$1.out" 2>&1
  local rps p99 bad
  rps=$(awk '/Requests\/sec/ {print $2}' "$1.out")
  p99=$(awk '$1 == "99%" {print $2}' "$1.out")
  bad=$(awk '/Non-2xx/ {print $NF}' "$1.out")
  echo "$rps req/s, p99 $p99, non-2xx ${bad:-0}"
}

echo "== $(date -u +%FT%TZ) side by side: A=$OLD B=$NEW, $ROUNDS rounds, wrk -t2 -c$WRK_CONNECTIONS -d$WRK_DURATION"
echo "== load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
  for which in A B; do
    bin=$OLD
    [[ $which == B ]] && bin=$NEW
    data=$WORK/run-$round-$which
    cp -r "$WORK/base" "$data"
    serve "$bin" "$data" "$data.log"
    key=$("$bin" customers add --data-dir "$data" --name Bench --email "bench-$round-$which@example.org" --tier enterprise 2>/dev/null |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
    lua_ids "$WORK/papers.lua" "" "$key"
    lua_ids "$WORK/forecast.lua" "/forecast?mode=at_publication" "$key"
    lua_search "$WORK/search.lua" "$key"
    echo "round $round $which papers:   $(measure "$WORK/papers.lua")"
    echo "round $round $which search:   $(measure "$WORK/search.lua")"
    echo "round $round $which forecast: $(measure "$WORK/forecast.lua")"
    stop
    rm -rf "$data"
  done
done
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
