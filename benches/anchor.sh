#!/usr/bin/env bash
# Paper lookups of the real server against a bare actix-web anchor, in the same run (issue 15:
# "authenticated paper lookup at least 0.6 of the bare actix-web anchor").
#
#   bash benches/anchor.sh
#
# - builds the release server and benches/anchor (a dozen lines of actix-web serving a
#   HashMap of the bundled papers as JSON, no key, no limiter, no store, no cache);
# - starts the server on a data dir (CITECAST_BENCH_DIR, or a fresh temporary one that its
#   first start fills with the bundled data), waits until its forecasts are warm, creates
#   KEYS enterprise keys (limits raised out of reach, as in load.sh);
# - starts the anchor on data/papers.jsonl.gz;
# - ROUNDS times, alternating anchor then server: wrk with benches/papers.lua over the same
#   300 ids (benches/lib.sh's sample), WRK_WARMUP then WRK_DURATION; the server's requests
#   carry the keys (Authorization: Bearer, round robin), the anchor's none;
# - prints req/s, p50 and p99 per run, the ratio server/anchor per round and its median,
#   the response sizes of both, and the load average before and after.
#
# Settings: ROUNDS (3), WRK_THREADS (2), WRK_CONNECTIONS (64), WRK_WARMUP (3s),
# WRK_DURATION (10s), KEYS (256), PORT (18120, the server), ANCHOR_PORT (18121),
# SKIP_BUILD=1 (use the built binaries; BIN and ANCHOR_BIN may name others). Both servers
# and wrk share the machine's cores; the server not under test sits idle meanwhile.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-64}
WRK_WARMUP=${WRK_WARMUP:-3s}
WRK_DURATION=${WRK_DURATION:-10s}
KEYS=${KEYS:-256}
PORT=${PORT:-18120}
ANCHOR_PORT=${ANCHOR_PORT:-18121}
ADDR=127.0.0.1:$PORT
BASE=http://$ADDR
ANCHOR=http://127.0.0.1:$ANCHOR_PORT
BIN=${BIN:-$ROOT/target/release/citecast}
ANCHOR_BIN=${ANCHOR_BIN:-$ROOT/target/anchor/release/anchor}
WORK=$(mktemp -d -t citecast-anchor.XXXXXX)
DATA_DIR=${CITECAST_BENCH_DIR:-$WORK/data}
SERVER_PID=""
ANCHOR_PID=""
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

cleanup() {
  stop_server
  if [[ -n "$ANCHOR_PID" ]]; then
    kill "$ANCHOR_PID" 2>/dev/null || true
    wait "$ANCHOR_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need_tools curl zcat awk python3
build_release
if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
  [[ -x "$ANCHOR_BIN" ]] || { echo "SKIP_BUILD=1 but $ANCHOR_BIN does not exist" >&2; exit 1; }
else
  echo "== building the anchor"
  cargo build --release --offline --manifest-path benches/anchor/Cargo.toml --target-dir target/anchor
fi

IDS=$WORK/paper_ids.txt
sample_paper_ids "$IDS" 300
raise_enterprise_limits "$WORK/tiers.json" >/dev/null

echo "== starting the server on $DATA_DIR"
CITECAST_LOG=warn start_server "$WORK/server.log"
echo "ready after $READY_S s; waiting for the forecasts' warm-up to end (it takes CPU)"
for _ in $(seq 1 600); do
  curl -s "$BASE/readyz" | grep -q '"forecasts":"ready"' && break
  sleep 0.5
done

echo "== creating $KEYS enterprise keys"
KEYS_TXT=$WORK/keys.txt
: >"$KEYS_TXT"
for i in $(seq 1 "$KEYS"); do
  "$BIN" customers add --name "anchor $i" --email "anchor-$i-$$@example.com" --tier enterprise \
    --data-dir "$DATA_DIR" 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])' >>"$KEYS_TXT"
done
python3 - "$KEYS_TXT" "$WORK/keys.lua" <<'PY'
import sys
keys = [l.strip() for l in open(sys.argv[1]) if l.strip()]
open(sys.argv[2], "w").write("return {\n" + "".join(f'  "{k}",\n' for k in keys) + "}\n")
PY
KEY1=$(head -1 "$KEYS_TXT")

echo "== starting the anchor"
"$ANCHOR_BIN" data/papers.jsonl.gz "127.0.0.1:$ANCHOR_PORT" 2>"$WORK/anchor.log" &
ANCHOR_PID=$!
for _ in $(seq 1 300); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' "$ANCHOR/v1/papers/hep-th/9711200" || true) == 200 ]] && break
  sleep 0.1
done
size() { curl -s -o /dev/null -w '%{size_download}' "$@"; }
echo "response sizes for hep-th/9711200 (most cited) and hep-th/0001001: server $(size -H "Authorization: Bearer $KEY1" "$BASE/v1/papers/hep-th/9711200") and $(size -H "Authorization: Bearer $KEY1" "$BASE/v1/papers/hep-th/0001001") bytes, anchor $(size "$ANCHOR/v1/papers/hep-th/9711200") and $(size "$ANCHOR/v1/papers/hep-th/0001001") bytes"

measure() { # NAME URL KEYS_LUA -> "req_s p50_ms p99_ms non2xx"
  wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_WARMUP" -s benches/papers.lua "$2" -- "$IDS" "$3" >/dev/null
  wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" --latency -s benches/papers.lua "$2" -- "$IDS" "$3" \
    >"$WORK/wrk-$1.txt"
  local line
  line=$(grep WRK_SUMMARY "$WORK/wrk-$1.txt")
  for f in req_s p50_ms p99_ms non2xx; do grep -o "$f=[^ ]*" <<<"$line" | cut -d= -f2; done | paste -sd' '
}

echo "== $(date -u +%FT%TZ) wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION (after $WRK_WARMUP), $ROUNDS rounds; load average $(cut -d' ' -f1-3 /proc/loadavg)"
RATIOS=()
printf '%-6s %-8s %10s %9s %9s %7s\n' round who req/s p50_ms p99_ms non2xx
for r in $(seq 1 "$ROUNDS"); do
  read -r a_rps a_p50 a_p99 a_bad < <(measure "anchor-$r" "$ANCHOR" -)
  printf '%-6s %-8s %10s %9s %9s %7s\n' "$r" anchor "$a_rps" "$a_p50" "$a_p99" "$a_bad"
  read -r s_rps s_p50 s_p99 s_bad < <(measure "server-$r" "$BASE" "$WORK/keys.lua")
  printf '%-6s %-8s %10s %9s %9s %7s\n' "$r" server "$s_rps" "$s_p50" "$s_p99" "$s_bad"
  RATIOS+=("$(awk -v s="$s_rps" -v a="$a_rps" 'BEGIN { printf "%.3f", s / a }')")
done
MEDIAN=$(printf '%s\n' "${RATIOS[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
echo "ratio server/anchor (req/s) per round: ${RATIOS[*]}; median $MEDIAN (target >= 0.6)"
echo "ANCHOR_SUMMARY ratios=$(IFS=,; echo "${RATIOS[*]}") median=$MEDIAN"
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
