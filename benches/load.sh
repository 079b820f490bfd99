#!/usr/bin/env bash
# HTTP load test of `citecast serve` with wrk.
#
#   bash benches/load.sh
#
# 1. installs wrk (apt-get) when missing and builds the release binary;
# 2. starts the server on a data dir and times its first load (start -> /readyz 200);
#    a fresh data dir means the bundled data is ingested and indexed first;
# 3. creates KEYS enterprise customers with the CLI (through the running server) and
#    writes their secrets into a Lua file; every wrk request below carries one of them,
#    round robin, as `Authorization: Bearer`, so key lookup and the limiter run on each;
# 4. runs wrk against /v1/papers/{id} (a few hundred real ids, benches/papers.lua),
#    /v1/search (20 rotating queries, benches/search.lua) and
#    /v1/papers/{id}/forecast?mode=at_publication and =early (benches/forecast.lua, ids
#    whose forecast answers 200 in both modes), after a short warm-up each;
# 5. overload: papers at OVERLOAD_CONNECTIONS (default 3 x WRK_CONNECTIONS) with every
#    status counted (benches/overload.lua): only 200, 429 and 503 are acceptable; RSS is
#    read before and after;
# 6. reads the server's resident memory after the load;
# 7. stops it (SIGTERM), restarts it on the same data dir and times start -> /readyz 200
#    (RESTARTS times), then runs a shorter papers + search load on the restarted server and reads its RSS;
# 8. prints a summary against the targets.
#
# Rate limits: an enterprise key allows 6,000 requests/min (100/s sustained, burst 1,000).
# KEYS=256 keys carry 25,600 req/s sustained, less than the cached paper lookups reach
# (40-46 K req/s measured), and real 429s would make req/s a rate of refusals. So by
# default (RAISE_LIMITS=1) the server runs with a copy of src/accounts/tiers.json (CITECAST_TIERS)
# whose *enterprise* limits are raised out of reach; the anonymous, free and pro tiers keep
# theirs. The limiter still checks (and counts) every request: it just never refuses.
# RAISE_LIMITS=0 serves the real tiers; then KEYS must exceed the peak req/s / 100 (e.g.
# KEYS=1024 for 100 K req/s over a run), or the run will include 429s.
#
# Settings (environment):
#   CITECAST_BENCH_DIR  data dir to serve (kept); default: a fresh temporary dir (removed)
#   PORT                listen port (default 18080)
#   WRK_THREADS         wrk threads (default 2)
#   WRK_CONNECTIONS     wrk connections (default 64)
#   WRK_DURATION        each measured run (default 25s)
#   WRK_WARMUP          warm-up before each measured run (default 5s)
#   WRK_RESTART_DURATION  each run on the restarted server (default 10s)
#   RESTARTS            how many times the restart is timed (default 3; the worst is judged)
#   PAPER_IDS           how many ids the papers run rotates over (default 300)
#   KEYS                enterprise API keys created and rotated (default 256)
#   RAISE_LIMITS        1 (default): enterprise limits raised out of reach; 0: real tiers
#   FORECAST_DURATION   each measured forecast run (default 15s)
#   OVERLOAD_CONNECTIONS  connections of the overload run (default 3 x WRK_CONNECTIONS)
#   OVERLOAD_DURATION   the overload run (default 20s)
#   SKIP_BUILD=1        use the existing target/release/citecast instead of building it
#   LOAD_KEEP=1         keep the work dir (server logs, wrk outputs, ids) and print its path
#
# wrk and the server run on the same machine and share its cores.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

PORT=${PORT:-18080}
ADDR=127.0.0.1:$PORT
BASE=http://$ADDR
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-64}
WRK_DURATION=${WRK_DURATION:-25s}
WRK_WARMUP=${WRK_WARMUP:-5s}
WRK_RESTART_DURATION=${WRK_RESTART_DURATION:-10s}
PAPER_IDS=${PAPER_IDS:-300}
RESTARTS=${RESTARTS:-3}
KEYS=${KEYS:-256}
RAISE_LIMITS=${RAISE_LIMITS:-1}
FORECAST_DURATION=${FORECAST_DURATION:-15s}
OVERLOAD_CONNECTIONS=${OVERLOAD_CONNECTIONS:-$((3 * WRK_CONNECTIONS))}
OVERLOAD_DURATION=${OVERLOAD_DURATION:-20s}
BIN=$ROOT/target/release/citecast

WORK=$(mktemp -d -t citecast-load.XXXXXX)
if [[ -n "${CITECAST_BENCH_DIR:-}" ]]; then
  DATA_DIR=$CITECAST_BENCH_DIR
else
  DATA_DIR=$WORK/data
fi
SERVER_PID=""
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

cleanup() {
  stop_server
  # A temporary data dir lives inside $WORK; CITECAST_BENCH_DIR is left alone.
  if [[ "${LOAD_KEEP:-0}" == 1 ]]; then
    rm -rf "$WORK/data"
    echo "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ------------------------------------------------------------------
need_tools curl zcat ps awk
build_release

# --- ids --------------------------------------------------------------------
IDS=$WORK/paper_ids.txt
sample_paper_ids "$IDS" "$PAPER_IDS"

# --- rate limits --------------------------------------------------------------
command -v python3 >/dev/null 2>&1 || { echo "python3 is needed (tier table, key secrets)" >&2; exit 1; }
if [[ "$RAISE_LIMITS" == 1 ]]; then
  raise_enterprise_limits "$WORK/tiers-enterprise-raised.json"
else
  unset CITECAST_TIERS
  echo "== real tier limits: $KEYS enterprise keys carry $((KEYS * 100)) req/s sustained (burst 1000 each)"
fi

# --- server -----------------------------------------------------------------
rss_mb() { awk '{ printf "%.1f", $1 / 1024 }' < <(ps -o rss= -p "$1"); }
hwm_mb() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

if [[ -d "$DATA_DIR/store" ]]; then FIRST_KIND="existing data dir"; else FIRST_KIND="empty data dir: bundled ingest + index"; fi
echo "== starting the server on $DATA_DIR ($FIRST_KIND)"
start_server "$WORK/server1.log"
FIRST_READY_S=$READY_S
RSS_FIRST_READY=$(rss_mb "$SERVER_PID")
echo "ready after ${FIRST_READY_S} s (pid $SERVER_PID), RSS ${RSS_FIRST_READY} MB"
curl -sf "$BASE/v1/papers/hep-th/9711200" -o /dev/null || { echo "paper lookup failed" >&2; exit 1; }
curl -sf "$BASE/v1/search?q=black+hole" -o /dev/null || { echo "search failed" >&2; exit 1; }

# --- API keys -----------------------------------------------------------------
# One enterprise customer per key, created with the CLI; with the server holding the data
# dir, the CLI goes through its admin endpoint. The keys are stored, so they still work
# after the restarts below.
KEYS_TXT=$WORK/keys.txt
KEYS_LUA=$WORK/keys.lua
echo "== creating $KEYS enterprise customers and keys"
keys_started=$(now)
: >"$KEYS_TXT"
create_key() {
  "$BIN" customers add --name "load test $1" --email "load-$1@example.com" --tier enterprise \
    --data-dir "$DATA_DIR" 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])'
}
for i in $(seq 1 "$KEYS"); do
  create_key "$i-$$" >>"$KEYS_TXT" || { echo "creating key $i failed" >&2; exit 1; }
done
[[ $(grep -c . "$KEYS_TXT") == "$KEYS" ]] || { echo "expected $KEYS keys in $KEYS_TXT" >&2; exit 1; }
python3 - "$KEYS_TXT" "$KEYS_LUA" <<'PY'
import sys
keys = [l.strip() for l in open(sys.argv[1]) if l.strip()]
with open(sys.argv[2], "w") as f:
    f.write("return {\n" + "".join(f'  "{k}",\n' for k in keys) + "}\n")
PY
echo "$KEYS keys in $KEYS_LUA ($(elapsed "$keys_started") s)"
KEY1=$(head -1 "$KEYS_TXT")
auth_code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY1" "$BASE/v1/papers/hep-th/9711200")
[[ "$auth_code" == 200 ]] || { echo "an authenticated paper lookup answered $auth_code" >&2; exit 1; }
bad_code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer cc_live_not_a_key" "$BASE/v1/papers/hep-th/9711200")
echo "authenticated lookup: $auth_code; with an unknown key: $bad_code"

# Forecast ids: those of the papers run whose forecast answers 200 in both modes (the
# newest papers are too young for an early forecast: 422). Asking once also fills the
# server's forecast cache, as the warm-up would.
FORECAST_IDS=$WORK/forecast_ids.txt
: >"$FORECAST_IDS"
forecast_dropped=0
while read -r id; do
  ok=1
  for mode in at_publication early; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY1" \
      "$BASE/v1/papers/$id/forecast?mode=$mode")
    [[ "$code" == 200 ]] || ok=0
  done
  if [[ $ok == 1 ]]; then echo "$id" >>"$FORECAST_IDS"; else forecast_dropped=$((forecast_dropped + 1)); fi
done <"$IDS"
echo "== $(wc -l <"$FORECAST_IDS") forecast ids in $FORECAST_IDS ($forecast_dropped of the paper ids dropped: not 200 in both modes)"

# run_wrk NAME DURATION SCRIPT [SCRIPT ARGS...]: warm-up run, then the measured run.
run_wrk() {
  local name=$1 duration=$2 script=$3
  shift 3
  echo
  echo "== wrk $name: warm-up $WRK_WARMUP"
  wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_WARMUP" -s "$script" "$BASE" -- "$@" >/dev/null
  echo "== wrk $name: -t$WRK_THREADS -c$WRK_CONNECTIONS -d$duration --latency"
  wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$duration" --latency -s "$script" "$BASE" -- "$@" |
    tee "$WORK/wrk-$name.txt"
}
run_wrk papers "$WRK_DURATION" benches/papers.lua "$IDS" "$KEYS_LUA"
run_wrk search "$WRK_DURATION" benches/search.lua "$KEYS_LUA"
run_wrk forecast-at_publication "$FORECAST_DURATION" benches/forecast.lua "$FORECAST_IDS" "$KEYS_LUA" at_publication
run_wrk forecast-early "$FORECAST_DURATION" benches/forecast.lua "$FORECAST_IDS" "$KEYS_LUA" early

# Overload: 3x the connections of the runs above, no warm-up beyond theirs.
RSS_BEFORE_OVERLOAD=$(rss_mb "$SERVER_PID")
echo
echo "== wrk overload (papers): -t$WRK_THREADS -c$OVERLOAD_CONNECTIONS -d$OVERLOAD_DURATION --latency; RSS before ${RSS_BEFORE_OVERLOAD} MB"
wrk -t"$WRK_THREADS" -c"$OVERLOAD_CONNECTIONS" -d"$OVERLOAD_DURATION" --latency -s benches/overload.lua "$BASE" \
  -- "$IDS" "$KEYS_LUA" | tee "$WORK/wrk-overload.txt"
RSS_AFTER_OVERLOAD=$(rss_mb "$SERVER_PID")
echo "RSS after the overload: ${RSS_AFTER_OVERLOAD} MB"

RSS_AFTER_LOAD=$(rss_mb "$SERVER_PID")
HWM_FIRST=$(hwm_mb "$SERVER_PID")
echo
echo "== server RSS after the load: ${RSS_AFTER_LOAD} MB (peak since start, incl. any ingest: ${HWM_FIRST} MB)"

echo "== stopping the server (SIGTERM)"
stop_start=$(now)
stop_server
STOP_S=$(elapsed "$stop_start")
echo "stopped in ${STOP_S} s"

RESTART_TIMES=()
for r in $(seq 1 "$RESTARTS"); do
  echo "== restart $r/$RESTARTS on the same data dir"
  [[ -z "$SERVER_PID" ]] || stop_server
  start_server "$WORK/server-restart$r.log"
  RESTART_TIMES+=("$READY_S")
  RSS_RESTART=$(rss_mb "$SERVER_PID")
  echo "ready after ${READY_S} s (pid $SERVER_PID), RSS ${RSS_RESTART} MB"
done
RESTART_READY_S=$(printf '%s\n' "${RESTART_TIMES[@]}" | sort -g | tail -1)
RESTART_MEDIAN_S=$(printf '%s\n' "${RESTART_TIMES[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
run_wrk papers-restarted "$WRK_RESTART_DURATION" benches/papers.lua "$IDS" "$KEYS_LUA"
run_wrk search-restarted "$WRK_RESTART_DURATION" benches/search.lua "$KEYS_LUA"
RSS_RESTART_LOAD=$(rss_mb "$SERVER_PID")
HWM_RESTART=$(hwm_mb "$SERVER_PID")
echo
echo "== restarted server RSS after its load: ${RSS_RESTART_LOAD} MB (peak ${HWM_RESTART} MB)"
stop_server

# --- summary ----------------------------------------------------------------
field() { grep -o "$2=[^ ]*" "$WORK/wrk-$1.txt" | head -1 | cut -d= -f2; }
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == "<") ? (v < t) : (v >= t); print ok ? "meets" : "MISSES" }'; }

P_RPS=$(field papers req_s) P_P50=$(field papers p50_ms) P_P95=$(field papers p95_ms)
P_P99=$(field papers p99_ms) P_ERR=$(field papers non2xx) P_SOCK=$(field papers socket_errors)
S_RPS=$(field search req_s) S_P50=$(field search p50_ms) S_P95=$(field search p95_ms)
S_P99=$(field search p99_ms) S_ERR=$(field search non2xx) S_SOCK=$(field search socket_errors)

for run in papers search forecast-at_publication forecast-early papers-restarted search-restarted; do
  bad=$(field "$run" non2xx)
  if [[ -n "$bad" && "$bad" != 0 ]]; then
    echo "WARNING: wrk $run got $bad non-2xx responses: its req/s is not a rate of served requests" >&2
  fi
done

echo
echo "================ summary ================"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM; wrk and the server share them"
echo "wrk: -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION (after a $WRK_WARMUP warm-up); $KEYS enterprise keys, RAISE_LIMITS=$RAISE_LIMITS"
printf '%-34s %s\n' "first start -> ready ($FIRST_KIND)" "${FIRST_READY_S} s"
printf '%-34s %s req/s, p50 %s ms, p95 %s ms, p99 %s ms, non-2xx %s, socket errors %s\n' \
  "/v1/papers/{id} ($(wc -l <"$IDS") ids)" "$P_RPS" "$P_P50" "$P_P95" "$P_P99" "$P_ERR" "$P_SOCK"
printf '%-34s   target >= 10000 req/s: %s; p95 < 10 ms: %s; p99 < 25 ms: %s\n' "" \
  "$(verdict "$P_RPS" ">=" 10000)" "$(verdict "$P_P95" "<" 10)" "$(verdict "$P_P99" "<" 25)"
printf '%-34s %s req/s, p50 %s ms, p95 %s ms, p99 %s ms, non-2xx %s, socket errors %s\n' \
  "/v1/search (20 queries)" "$S_RPS" "$S_P50" "$S_P95" "$S_P99" "$S_ERR" "$S_SOCK"
for run in forecast-at_publication forecast-early; do
  printf '%-34s %s req/s, p50 %s ms, p95 %s ms, p99 %s ms, non-2xx %s, socket errors %s\n' \
    "/v1/papers/{id}/forecast ${run#forecast-}" "$(field "$run" req_s)" "$(field "$run" p50_ms)" \
    "$(field "$run" p95_ms)" "$(field "$run" p99_ms)" "$(field "$run" non2xx)" "$(field "$run" socket_errors)"
  printf '%-34s   target >= 10000 req/s: %s; p95 < 10 ms: %s; p99 < 25 ms: %s\n' "" \
    "$(verdict "$(field "$run" req_s)" ">=" 10000)" "$(verdict "$(field "$run" p95_ms)" "<" 10)" \
    "$(verdict "$(field "$run" p99_ms)" "<" 25)"
done
O_OTHER=$(field overload sother)
printf '%-34s %s req/s, p50 %s ms, p99 %s ms; statuses 200: %s, 429: %s, 503: %s, other: %s; socket errors %s\n' \
  "overload papers (-c$OVERLOAD_CONNECTIONS)" "$(field overload req_s)" "$(field overload p50_ms)" \
  "$(field overload p99_ms)" "$(field overload s200)" "$(field overload s429)" "$(field overload s503)" \
  "$O_OTHER" "$(field overload socket_errors)"
printf '%-34s   only 200/429/503: %s; p99 < 100 ms: %s (p99 of all responses; wrk cannot split it by status)\n' "" \
  "$([[ "$O_OTHER" == 0 ]] && echo meets || echo MISSES)" "$(verdict "$(field overload p99_ms)" "<" 100)"
printf '%-34s %s MB before, %s MB after\n' "RSS around the overload" "$RSS_BEFORE_OVERLOAD" "$RSS_AFTER_OVERLOAD"
printf '%-34s %s s (worst of: %s s; median %s s)   target < 2 s: %s\n' "restart -> ready" "$RESTART_READY_S" \
  "${RESTART_TIMES[*]}" "$RESTART_MEDIAN_S" "$(verdict "$RESTART_READY_S" "<" 2)"
printf '%-34s %s MB   target < 500 MB: %s\n' "RSS after the wrk load" "$RSS_AFTER_LOAD" "$(verdict "$RSS_AFTER_LOAD" "<" 500)"
printf '%-34s %s MB at ready, peak %s MB\n' "first server RSS before the load" "$RSS_FIRST_READY" "$HWM_FIRST"
printf '%-34s %s MB\n' "RSS right after restart" "$RSS_RESTART"
printf '%-34s %s MB (peak %s MB)   target < 500 MB: %s\n' "RSS of restarted server after load" \
  "$RSS_RESTART_LOAD" "$HWM_RESTART" "$(verdict "$RSS_RESTART_LOAD" "<" 500)"
for run in papers-restarted search-restarted; do
  printf '%-34s %s req/s, p50 %s ms, p95 %s ms, p99 %s ms, non-2xx %s\n' "$run ($WRK_RESTART_DURATION)" \
    "$(field "$run" req_s)" "$(field "$run" p50_ms)" "$(field "$run" p95_ms)" "$(field "$run" p99_ms)" \
    "$(field "$run" non2xx)"
done
