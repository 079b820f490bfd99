#!/usr/bin/env bash
# Cost curves from 30k to 1M papers (issue 15): for each size, a synthetic corpus
# (benches/gen_corpus.rs), then with the RELEASE binary:
#
#   bash benches/scale.sh                      # SIZES="30000 100000 300000 1000000"
#   SIZES="30000 100000" TRAIN_MAX=100000 bash benches/scale.sh
#
#  1. generate the corpus (kept in CORPUS_ROOT and reused when its corpus.json matches);
#  2. `citecast ingest` of papers + citations into an empty data dir: wall time and peak RSS;
#  3. the data dir's size on disk (store/ and index/);
#  4. first `serve` on it: start -> /readyz 200, and -> /readyz "forecasts":"ready";
#     RSS when warm (idle); stop; restart: the same two times and the idle RSS again;
#  5. KEYS enterprise keys (limits raised out of reach as in load.sh, and
#     CITECAST_MAX_IN_FLIGHT_PER_CALLER raised so the keys may hold every connection);
#  6. wrk (WRK_THREADS x WRK_CONNECTIONS, WRK_WARMUP then WRK_DURATION, --latency), RSS
#     sampled every 0.5 s meanwhile:
#     - paper lookups over the whole corpus (benches/scale_papers.lua: a random walk over
#       every id and, with LOOKUP_FORMS=3, its two aliases, so no path repeats before
#       1.5 N requests per thread and the 32,768-entry response cache cannot hold the walk;
#       the cache's hit ratio during the run is read from /metrics and reported);
#     - search: the corpus's random two-word queries (DIR/queries.txt, benches/scale_search.lua)
#       and the 20 queries of benches/search.lua; then the random queries on 1 connection
#       (latency without queueing, to set next to the direct figure);
#     - single forecasts, GET /v1/papers/{id}/forecast?mode=at_publication, over random ids;
#  7. batch forecasts: BATCH_REQUESTS x POST /v1/forecasts of 1,000 random ids, one after
#     another (benches/scale_batch.py); forecasts/s;
#  8. RSS under load: the highest sample during 6-7, and VmHWM;
#  9. DIRECT=1 (default): benches/search_direct.rs on the stopped server's data dir (the same
#     queries through TopicIndex::search and bare tantivy, one thread);
# 10. `citecast train --bundled-data CORPUS --mode both` (wall time, peak RSS) when the size is
#     at most TRAIN_MAX, else skipped with a note.
#
# Every step runs under a timeout; a failed or timed-out step leaves its cells empty, says
# why in the notes column, and the bench goes on. Results: benches/results/scale-DATE.csv and
# .md (RESULTS overrides the path without extension), then benches/plot_scale.py draws
# docs/img/scale-*.svg from the CSV.
#
# Settings (environment): SIZES, SEED (1), PORT (18100), KEYS (8), WRK_THREADS (2),
# WRK_CONNECTIONS (16), WRK_WARMUP (3s), WRK_DURATION (10s), BATCH_REQUESTS (10), LOOKUP_FORMS (3),
# TRAIN_MAX (300000), TRAIN_TIMEOUT (1800 s), GEN_TIMEOUT (1800 s), INGEST_TIMEOUT (3600 s),
# READY_TIMEOUT (600 s), WARM_TIMEOUT (900 s), DIRECT (1), DIRECT_TIMEOUT (600 s),
# CORPUS_ROOT (/tmp/citecast-scale/corpus), WORK (/tmp/citecast-scale/run), KEEP_DATA (0:
# each data dir is removed after its size), SKIP_BUILD (0: `cargo build --release` first),
# PLOT (1), SERVER_LOG (warn; `info` logs the warm-up's phases into server-N-*.log); BIN,
# GEN_EXE and DIRECT_EXE replace the release binaries (e.g. debug builds, to try the script
# out). wrk, the server and the other steps share the machine's cores; the load average at the
# start of each size is recorded.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

SIZES=${SIZES:-"30000 100000 300000 1000000"}
SEED=${SEED:-1}
PORT=${PORT:-18100}
ADDR=127.0.0.1:$PORT
BASE=http://$ADDR
KEYS=${KEYS:-8}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-16}
WRK_WARMUP=${WRK_WARMUP:-3s}
WRK_DURATION=${WRK_DURATION:-10s}
BATCH_REQUESTS=${BATCH_REQUESTS:-10}
LOOKUP_FORMS=${LOOKUP_FORMS:-3}
TRAIN_MAX=${TRAIN_MAX:-300000}
TRAIN_TIMEOUT=${TRAIN_TIMEOUT:-1800}
GEN_TIMEOUT=${GEN_TIMEOUT:-1800}
INGEST_TIMEOUT=${INGEST_TIMEOUT:-3600}
READY_TIMEOUT=${READY_TIMEOUT:-600}
WARM_TIMEOUT=${WARM_TIMEOUT:-900}
DIRECT=${DIRECT:-1}
DIRECT_TIMEOUT=${DIRECT_TIMEOUT:-600}
CORPUS_ROOT=${CORPUS_ROOT:-/tmp/citecast-scale/corpus}
WORK=${WORK:-/tmp/citecast-scale/run}
KEEP_DATA=${KEEP_DATA:-0}
PLOT=${PLOT:-1}
BIN=${BIN:-$ROOT/target/release/citecast}
STAMP=$(date -u +%F)
RESULTS=${RESULTS:-$ROOT/benches/results/scale-$STAMP}
CSV=$RESULTS.csv
MD=$RESULTS.md

SERVER_PID=""
SAMPLER_PID=""
mkdir -p "$CORPUS_ROOT" "$WORK" "$(dirname "$RESULTS")"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

log() { echo "== $(date -u +%H:%M:%S) $*"; }
stop_sampler() {
  if [[ -n "$SAMPLER_PID" ]]; then
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=""
  fi
}
cleanup() {
  stop_sampler
  stop_server
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools and binaries ---------------------------------------------------------
need_tools curl zcat awk python3 timeout du
build_release
# The bench binaries (release profile): their paths from cargo's JSON messages.
bench_exe() {
  cargo bench --offline --bench "$1" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$1" | tail -1
}
log "building the bench binaries (release)"
GEN=${GEN_EXE:-$(bench_exe gen_corpus)}
[[ -x "$GEN" ]] || { echo "could not build benches/gen_corpus.rs" >&2; exit 1; }
DIRECT_EXE=${DIRECT_EXE:-}
if [[ "$DIRECT" == 1 && -z "$DIRECT_EXE" ]]; then
  DIRECT_EXE=$(bench_exe search_direct)
  [[ -x "$DIRECT_EXE" ]] || { echo "could not build benches/search_direct.rs; DIRECT skipped" >&2; DIRECT=0; }
fi
raise_enterprise_limits "$WORK/tiers-enterprise-raised.json" >/dev/null
export CITECAST_MAX_IN_FLIGHT_PER_CALLER=$((WRK_CONNECTIONS * 4))
# Batches of 1,000 may take longer than the default 10 s per request at large sizes.
export CITECAST_REQUEST_TIMEOUT=${CITECAST_REQUEST_TIMEOUT:-120}

COLUMNS=(papers citations authors gen_s corpus_gz_mb ingest_s ingest_peak_rss_mb disk_mb store_mb index_mb
  first_ready_s first_warm_s restart_ready_s restart_warm_s rss_idle_mb rss_load_mb rss_hwm_mb
  lookup_rps lookup_p50_ms lookup_p99_ms lookup_hit_ratio search_rps search_p50_ms search_p99_ms
  search20_rps search20_p50_ms search20_p99_ms search1_rps search1_p50_ms search1_p99_ms forecast_rps forecast_p50_ms forecast_p99_ms
  batch_forecasts_per_s batch_p50_s direct_full_p50_ms direct_top_p50_ms direct20_full_p50_ms
  direct20_top_p50_ms train_s train_peak_rss_mb load_avg_start non2xx notes)
if [[ ! -s "$CSV" ]]; then
  (IFS=,; echo "${COLUMNS[*]}") >"$CSV"
fi

declare -A R
note() {
  echo "   note: $*"
  R[notes]="${R[notes]:+${R[notes]}; }$*"
}
rss_mb() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }
hwm_mb() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }
du_mb() { du -sb "$1" 2>/dev/null | awk '{ printf "%.1f", $1 / 1e6 }'; }

# start_and_time LOG PREFIX: starts the server on $DATA_DIR, sets R[PREFIX_ready_s] and
# R[PREFIX_warm_s] (from the launch); returns non-zero when it never got ready.
start_and_time() {
  local log=$1 prefix=$2 started code
  if curl -s -o /dev/null "$BASE/healthz"; then
    note "something already answers on $ADDR"
    return 1
  fi
  started=$(now)
  CITECAST_LOG=${SERVER_LOG:-warn} "$BIN" serve --data-dir "$DATA_DIR" --addr "$ADDR" >"$log" 2>&1 &
  SERVER_PID=$!
  while true; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz" || true)
    [[ "$code" == 200 ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      note "$prefix start: the server exited ($(tail -1 "$log" | cut -c1-160))"
      SERVER_PID=""
      return 1
    fi
    if awk -v a="$started" -v b="$(now)" -v t="$READY_TIMEOUT" 'BEGIN { exit !(b - a > t) }'; then
      note "$prefix start: not ready after $READY_TIMEOUT s"
      stop_server
      return 1
    fi
    sleep 0.05
  done
  R[${prefix}_ready_s]=$(elapsed "$started")
  while ! curl -s "$BASE/readyz" | grep -q '"forecasts":"ready"'; do
    if awk -v a="$started" -v b="$(now)" -v t="$WARM_TIMEOUT" 'BEGIN { exit !(b - a > t) }'; then
      note "$prefix start: forecasts not warm after $WARM_TIMEOUT s"
      return 0
    fi
    sleep 0.2
  done
  R[${prefix}_warm_s]=$(elapsed "$started")
  echo "   $prefix start: ready ${R[${prefix}_ready_s]} s, forecasts warm ${R[${prefix}_warm_s]} s"
}

# Samples the server's VmRSS every 0.5 s into FILE until stopped.
start_sampler() {
  local file=$1 pid=$SERVER_PID
  : >"$file"
  (while kill -0 "$pid" 2>/dev/null; do
    awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null >>"$file"
    sleep 0.5
  done) &
  SAMPLER_PID=$!
}

cache_counts() { # -> "hits misses"
  curl -s --max-time 10 "$BASE/metrics" |
    awk '/^citecast_cache_requests_total\{outcome="hit"\}/ { h = $2 } /^citecast_cache_requests_total\{outcome="miss"\}/ { m = $2 } END { print h + 0, m + 0 }'
}

# run_wrk NAME PREFIX SCRIPT ARGS...: warm-up, measured run; sets R[PREFIX_rps|p50_ms|p99_ms].
# An argument @START@ becomes a quarter of the lookup walk (N x LOOKUP_FORMS / 4) for the
# warm-up and 0 for the measured run, so the measured run does not begin on the paths the
# warm-up just cached.
run_wrk() {
  local name=$1 prefix=$2 script=$3 out
  shift 3
  out=$WORK/wrk-$N-$name.txt
  local secs=${WRK_DURATION%s} warm=${WRK_WARMUP%s}
  local warm_args=("${@//@START@/$((N * LOOKUP_FORMS / 4))}")
  set -- "${@//@START@/0}"
  timeout $((warm + 30)) wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_WARMUP" --timeout 10s -s "$script" "$BASE" -- "${warm_args[@]}" >/dev/null 2>&1
  if ! timeout $((secs + 60)) wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" --timeout 10s --latency \
    -s "$script" "$BASE" -- "$@" >"$out" 2>&1; then
    note "wrk $name failed or timed out ($(tail -1 "$out" | cut -c1-120))"
    return 1
  fi
  local line
  line=$(grep WRK_SUMMARY "$out" | head -1)
  [[ -n "$line" ]] || { note "wrk $name printed no summary"; return 1; }
  get() { grep -o "$1=[^ ]*" <<<"$line" | head -1 | cut -d= -f2; }
  R[${prefix}_rps]=$(get req_s)
  R[${prefix}_p50_ms]=$(get p50_ms)
  R[${prefix}_p99_ms]=$(get p99_ms)
  local bad
  bad=$(( $(get non2xx) + $(get socket_errors) ))
  if (( bad > 0 )); then
    R[non2xx]="${R[non2xx]:+${R[non2xx]} }$name:$bad"
    note "wrk $name: $bad non-2xx responses or socket errors"
  fi
  echo "   $name: $(get req_s) req/s, p50 $(get p50_ms) ms, p99 $(get p99_ms) ms, non-2xx $(get non2xx)"
}

write_row() {
  local row="" c v
  for c in "${COLUMNS[@]}"; do
    v=${R[$c]:-}
    v=${v//,/;}
    row+="${row:+,}$v"
  done
  echo "$row" >>"$CSV"
}

MACHINE="$(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM"
log "scale bench: sizes $SIZES, seed $SEED; $MACHINE; binary $BIN (built $(date -u -r "$BIN" '+%F %T UTC')); HEAD $(git rev-parse --short HEAD)"

for N in $SIZES; do
  R=()
  R[papers]=$N
  R[load_avg_start]=$(cut -d' ' -f1 /proc/loadavg)
  log "size $N (load average ${R[load_avg_start]})"
  CORPUS=$CORPUS_ROOT/n$N-s$SEED
  DATA_DIR=$WORK/data-$N

  # 1. corpus
  if [[ -s "$CORPUS/corpus.json" && -s "$CORPUS/papers.jsonl.gz" ]] &&
    python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))["settings"]; sys.exit(not (s["papers"] == int(sys.argv[2]) and s["seed"] == int(sys.argv[3])))' \
      "$CORPUS/corpus.json" "$N" "$SEED"; then
    echo "   corpus: reusing $CORPUS"
  else
    rm -rf "$CORPUS"
    if ! timeout "$GEN_TIMEOUT" "$GEN" --bench --papers "$N" --seed "$SEED" --out "$CORPUS" >"$WORK/gen-$N.log" 2>&1; then
      note "generation failed or timed out ($(tail -1 "$WORK/gen-$N.log" | cut -c1-160))"
      write_row
      continue
    fi
    grep '^generated' "$WORK/gen-$N.log" | sed 's/^/   /'
  fi
  eval "$(python3 -c 'import json, sys
w = json.load(open(sys.argv[1]))["written"]
print("R[citations]=%d R[authors]=%d R[gen_s]=%.1f R[corpus_gz_mb]=%.1f" % (w["citations"], w["authors"],
      w["generation_seconds"], (w["papers_jsonl_gz_bytes"] + w["citations_tsv_gz_bytes"]) / 1e6))' "$CORPUS/corpus.json")"

  # 2. ingest (REUSE_INGEST=1: a data dir this bench left, with KEEP_DATA or after an
  # interrupted run, is served as it is; REUSED_INGEST_S and REUSED_INGEST_RSS_MB carry the
  # figures of the ingest that made it, and the note says so)
  if [[ "${REUSE_INGEST:-0}" == 1 && -d "$DATA_DIR/store" ]]; then
    log "reusing the data dir of an earlier ingest: $DATA_DIR"
    R[ingest_s]=${REUSED_INGEST_S:-}
    R[ingest_peak_rss_mb]=${REUSED_INGEST_RSS_MB:-}
    note "ingest not rerun: the data dir of an earlier run of this bench, ingested in ${REUSED_INGEST_S:-?} s (peak RSS ${REUSED_INGEST_RSS_MB:-?} MB) and opened once since"
  else
  rm -rf "$DATA_DIR"
  log "ingest into an empty data dir"
  started=$(now)
  if /usr/bin/time -f 'PEAK_RSS_KB %M' -o "$WORK/ingest-$N.time" timeout "$INGEST_TIMEOUT" \
    "$BIN" ingest --data-dir "$DATA_DIR" --json "$CORPUS/papers.jsonl.gz" "$CORPUS/citations_dated.tsv.gz" \
    >"$WORK/ingest-$N.json" 2>"$WORK/ingest-$N.log"; then
    R[ingest_s]=$(elapsed "$started")
    R[ingest_peak_rss_mb]=$(awk '/PEAK_RSS_KB/ { printf "%.0f", $2 / 1024 }' "$WORK/ingest-$N.time")
    rejected=$(python3 -c 'import json, sys; print(sum(r["errors"] for r in json.load(open(sys.argv[1]))))' "$WORK/ingest-$N.json" 2>/dev/null || echo "?")
    [[ "$rejected" == 0 ]] || note "ingest rejected $rejected lines"
    echo "   ingest: ${R[ingest_s]} s, peak RSS ${R[ingest_peak_rss_mb]} MB, rejected lines $rejected"
  else
    note "ingest failed or timed out after $(elapsed "$started") s ($(tail -1 "$WORK/ingest-$N.log" | cut -c1-160))"
    write_row
    continue
  fi
  fi

  # 3. disk
  R[disk_mb]=$(du_mb "$DATA_DIR")
  R[store_mb]=$(du_mb "$DATA_DIR/store")
  R[index_mb]=$(du_mb "$DATA_DIR/index")
  echo "   on disk: ${R[disk_mb]} MB (store ${R[store_mb]} MB, index ${R[index_mb]} MB)"

  # 4. first start after the ingest, then a restart
  log "first start"
  if start_and_time "$WORK/server-$N-first.log" first; then
    sleep 2
    stop_server
  fi
  log "restart"
  if ! start_and_time "$WORK/server-$N-restart.log" restart; then
    write_row
    continue
  fi
  sleep 2
  R[rss_idle_mb]=$(rss_mb "$SERVER_PID")
  echo "   RSS idle (warm): ${R[rss_idle_mb]} MB"

  # 5. keys
  KEYS_TXT=$WORK/keys-$N.txt
  KEYS_LUA=$WORK/keys-$N.lua
  : >"$KEYS_TXT"
  for i in $(seq 1 "$KEYS"); do
    timeout 60 "$BIN" customers add --name "scale $N $i" --email "scale-$N-$i-$$@example.com" --tier enterprise \
      --data-dir "$DATA_DIR" 2>/dev/null |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])' >>"$KEYS_TXT" 2>/dev/null || true
  done
  if [[ $(grep -c . "$KEYS_TXT") == 0 ]]; then
    note "no API key could be created: HTTP steps skipped"
    stop_server
    write_row
    continue
  fi
  python3 - "$KEYS_TXT" "$KEYS_LUA" <<'PY'
import sys
keys = [l.strip() for l in open(sys.argv[1]) if l.strip()]
open(sys.argv[2], "w").write("return {\n" + "".join(f'  "{k}",\n' for k in keys) + "}\n")
PY
  KEY1=$(head -1 "$KEYS_TXT")

  # 6. wrk
  start_sampler "$WORK/rss-$N.txt"
  read -r h0 m0 < <(cache_counts)
  log "wrk paper lookups"
  run_wrk lookup lookup benches/scale_papers.lua "$N" "$KEYS_LUA" "" @START@ "$LOOKUP_FORMS" || true
  read -r h1 m1 < <(cache_counts)
  # The warm-up and the measured run both count: the ratio is of both.
  R[lookup_hit_ratio]=$(awk -v h=$((h1 - h0)) -v m=$((m1 - m0)) 'BEGIN { if (h + m > 0) printf "%.3f", h / (h + m) }')
  echo "   response-cache hit ratio during the lookups: ${R[lookup_hit_ratio]:-n/a}"
  log "wrk search"
  run_wrk search-random search benches/scale_search.lua "$CORPUS/queries.txt" "$KEYS_LUA" || true
  run_wrk search-20 search20 benches/search.lua "$KEYS_LUA" || true
  # One connection: the latency of a search without queueing behind 15 others.
  WRK_THREADS=1 WRK_CONNECTIONS=1 run_wrk search-c1 search1 benches/scale_search.lua "$CORPUS/queries.txt" "$KEYS_LUA" || true
  log "wrk single forecasts"
  run_wrk forecast forecast benches/scale_papers.lua "$N" "$KEYS_LUA" "/forecast?mode=at_publication" @START@ "$LOOKUP_FORMS" || true

  # 7. batch forecasts
  log "batch forecasts: $BATCH_REQUESTS x 1000 ids"
  if line=$(timeout 900 python3 benches/scale_batch.py "$BASE" "$KEY1" "$N" "$BATCH_REQUESTS" 1000 2>&1 | grep '^BATCH'); then
    echo "   $line"
    R[batch_forecasts_per_s]=$(grep -o 'forecasts_per_s=[^ ]*' <<<"$line" | cut -d= -f2)
    R[batch_p50_s]=$(grep -o 'p50_s=[^ ]*' <<<"$line" | cut -d= -f2)
    grep -q 'status=200$' <<<"$line" || note "batch: statuses $(grep -o 'status=.*' <<<"$line")"
  else
    note "batch forecasts failed or timed out"
  fi

  # 8. RSS under load
  stop_sampler
  R[rss_load_mb]=$(sort -n "$WORK/rss-$N.txt" | tail -1 | awk '{ printf "%.0f", $1 / 1024 }')
  R[rss_hwm_mb]=$(hwm_mb "$SERVER_PID")
  echo "   RSS under load: max ${R[rss_load_mb]} MB, VmHWM ${R[rss_hwm_mb]} MB"
  stop_server

  # 9. direct search on the same index
  if [[ "$DIRECT" == 1 ]]; then
    log "direct search (benches/search_direct.rs)"
    if CITECAST_BENCH_DATA=$DATA_DIR timeout "$DIRECT_TIMEOUT" "$DIRECT_EXE" --bench >"$WORK/direct-$N.txt" 2>&1; then
      pick() { grep "SEARCH_DIRECT set=$1 variant=$2 " "$WORK/direct-$N.txt" | grep -o 'p50_ms=[^ ]*' | cut -d= -f2; }
      R[direct_full_p50_ms]=$(pick random2 full)
      R[direct_top_p50_ms]=$(pick random2 top_only)
      R[direct20_full_p50_ms]=$(pick fixed20 full)
      R[direct20_top_p50_ms]=$(pick fixed20 top_only)
      grep -E '^(fixed20|random2) ' "$WORK/direct-$N.txt" | sed 's/^/   /'
    else
      note "direct search failed or timed out ($(tail -1 "$WORK/direct-$N.txt" | cut -c1-160))"
    fi
  fi

  # 10. training
  if (( N <= TRAIN_MAX )); then
    log "training both modes on the corpus"
    rm -rf "$WORK/models-$N"
    started=$(now)
    if /usr/bin/time -f 'PEAK_RSS_KB %M' -o "$WORK/train-$N.time" timeout "$TRAIN_TIMEOUT" \
      "$BIN" train --bundled-data "$CORPUS" --mode both --models-dir "$WORK/models-$N" >"$WORK/train-$N.log" 2>&1; then
      R[train_s]=$(elapsed "$started")
      R[train_peak_rss_mb]=$(awk '/PEAK_RSS_KB/ { printf "%.0f", $2 / 1024 }' "$WORK/train-$N.time")
      echo "   training: ${R[train_s]} s, peak RSS ${R[train_peak_rss_mb]} MB"
      if grep -q "no training rows" "$WORK/train-$N.log"; then
        note "training found no training rows (the forecast task's years are 1992-2001: generate the corpus in that calendar)"
      fi
    else
      note "training failed or timed out after $(elapsed "$started") s (TRAIN_TIMEOUT=$TRAIN_TIMEOUT; $(tail -1 "$WORK/train-$N.log" | cut -c1-160))"
    fi
    rm -rf "$WORK/models-$N"
  else
    note "training skipped: $N papers > TRAIN_MAX=$TRAIN_MAX"
  fi

  [[ "$KEEP_DATA" == 1 ]] || rm -rf "$DATA_DIR"
  write_row
  log "size $N done"
done

# --- table and plots ---------------------------------------------------------------
python3 - "$CSV" "$MD" "$MACHINE" "$(git rev-parse --short HEAD)" "$(date -u -r "$BIN" '+%F %T UTC')" \
  "wrk -t$WRK_THREADS -c$WRK_CONNECTIONS, ${WRK_WARMUP} warm-up + ${WRK_DURATION}; $KEYS enterprise keys (limits raised); seed $SEED" <<'PY'
import csv, sys
path, md, machine, head, built, wrk = sys.argv[1:7]
# A size run again (same day) replaces its earlier row.
rows = list({r["papers"]: r for r in csv.DictReader(open(path))}.values())
rows.sort(key=lambda r: int(r["papers"]))
labels = [
    ("papers", "papers"), ("citations", "citations"), ("authors", "authors"),
    ("gen_s", "corpus generation (s)"), ("corpus_gz_mb", "corpus files, gzip (MB)"),
    ("ingest_s", "`citecast ingest` into an empty dir (s)"), ("ingest_peak_rss_mb", "ingest peak RSS (MB)"),
    ("disk_mb", "data dir on disk (MB)"), ("store_mb", "  of which store/ (MB)"), ("index_mb", "  of which index/ (MB)"),
    ("first_ready_s", "first start after ingest -> ready (s)"), ("first_warm_s", "first start -> forecasts warm (s)"),
    ("restart_ready_s", "restart -> ready (s)"), ("restart_warm_s", "restart -> forecasts warm (s)"),
    ("rss_idle_mb", "RSS idle, warm (MB)"), ("rss_load_mb", "RSS under load, max sample (MB)"), ("rss_hwm_mb", "VmHWM at the end (MB)"),
    ("lookup_rps", "paper lookup req/s"), ("lookup_p50_ms", "paper lookup p50 (ms)"), ("lookup_p99_ms", "paper lookup p99 (ms)"),
    ("lookup_hit_ratio", "response-cache hit ratio during lookups"),
    ("search_rps", "search, random two words: req/s"), ("search_p50_ms", "search, random two words: p50 (ms)"), ("search_p99_ms", "search, random two words: p99 (ms)"),
    ("search20_rps", "search, 20 queries of search.lua: req/s"), ("search20_p50_ms", "search, 20 queries: p50 (ms)"), ("search20_p99_ms", "search, 20 queries: p99 (ms)"),
    ("search1_rps", "search, random two words, 1 connection: req/s"), ("search1_p50_ms", "search, 1 connection: p50 (ms)"), ("search1_p99_ms", "search, 1 connection: p99 (ms)"),
    ("direct_full_p50_ms", "direct TopicIndex::search, random two words: p50 (ms)"), ("direct_top_p50_ms", "direct tantivy TopDocs only, random two words: p50 (ms)"),
    ("direct20_full_p50_ms", "direct TopicIndex::search, 20 queries: p50 (ms)"), ("direct20_top_p50_ms", "direct TopDocs only, 20 queries: p50 (ms)"),
    ("forecast_rps", "single forecast (uncached) req/s"), ("forecast_p50_ms", "single forecast p50 (ms)"), ("forecast_p99_ms", "single forecast p99 (ms)"),
    ("batch_forecasts_per_s", "batch POST /v1/forecasts, 1,000 ids: forecasts/s"), ("batch_p50_s", "batch of 1,000: p50 (s)"),
    ("train_s", "`citecast train --mode both` (s)"), ("train_peak_rss_mb", "training peak RSS (MB)"),
    ("load_avg_start", "load average when the size started"), ("non2xx", "non-2xx / socket errors"),
]
out = [f"# Scale bench ({path.rsplit('/', 1)[-1]})", "",
       f"Machine: {machine}. Binary built {built}; HEAD {head} (the tree may hold uncommitted changes). {wrk}.",
       "wrk, the server and every other step share the machine's cores. Empty cell: step skipped or failed (see notes).", "",
       "| | " + " | ".join(f"{int(r['papers']):,}" for r in rows) + " |",
       "|---|" + "---|" * len(rows)]
for key, label in labels[1:]:
    out.append(f"| {label} | " + " | ".join(r.get(key, "") or "" for r in rows) + " |")
out += ["", "Notes:", ""] + [f"- {int(r['papers']):,}: {r['notes']}" for r in rows if r.get("notes")]
open(md, "w").write("\n".join(out) + "\n")
PY
log "results: $CSV and $MD"
cat "$MD"
if [[ "$PLOT" == 1 ]]; then
  python3 benches/plot_scale.py "$CSV" docs/img && log "plots in docs/img/scale-*.svg"
fi
