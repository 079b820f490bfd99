# Shared by benches/load.sh and benches/rollout-drill.sh: sourced, never run.
# Expects ROOT, BIN, ADDR, BASE, DATA_DIR and SERVER_PID to be set by the caller.

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# Stops the server with SIGTERM (SIGKILL after 30 s) and clears SERVER_PID.
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "server $SERVER_PID did not stop within 30 s of SIGTERM; killing it" >&2
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

# Installs wrk when missing and checks the other tools given as arguments.
need_tools() {
  if ! command -v wrk >/dev/null 2>&1; then
    echo "== installing wrk"
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get install -y wrk || { $sudo apt-get update && $sudo apt-get install -y wrk; }
  fi
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "missing tool: $tool" >&2; exit 1; }
  done
}

# Builds the release binary unless SKIP_BUILD=1.
build_release() {
  if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
    [[ -x "$BIN" ]] || { echo "SKIP_BUILD=1 but $BIN does not exist" >&2; exit 1; }
    echo "== SKIP_BUILD=1: using the existing $BIN (built $(date -u -r "$BIN" '+%Y-%m-%d %H:%M:%S UTC'))"
  else
    echo "== building the release binary"
    cargo build --release
  fi
}

# Writes N paper ids to FILE: every k-th paper of the bundled file, plus the most cited
# one (hep-th/9711200).
sample_paper_ids() {
  local file=$1 n=$2 total step
  total=$(zcat data/papers.jsonl.gz | wc -l)
  step=$(( total / n ))
  (( step >= 1 )) || step=1
  {
    echo "hep-th/9711200"
    zcat data/papers.jsonl.gz |
      grep -o '"arxiv_id": *"[^"]*"' |
      sed 's/.*"\([^"]*\)"$/\1/' |
      awk -v step="$step" -v max="$n" 'NR % step == 0 && n < max - 1 { print; n++ }'
  } >"$file"
  echo "== $(wc -l <"$file") paper ids in $file (every ${step}th of $total, plus hep-th/9711200)"
}

# Exports CITECAST_TIERS as a copy of src/accounts/tiers.json whose enterprise limits are out of
# reach (the limiter still checks and counts every request; it never refuses).
raise_enterprise_limits() {
  local file=$1
  "$BIN" serve --help 2>/dev/null | grep -q -- '--tiers' ||
    { echo "this binary has no --tiers; raised enterprise limits are not possible" >&2; exit 1; }
  export CITECAST_TIERS=$file
  python3 - src/accounts/tiers.json "$CITECAST_TIERS" <<'PY'
import json, sys
tiers = json.load(open(sys.argv[1]))
for t in tiers["tiers"]:
    if t["id"] == "enterprise":
        t["per_minute"] = 4_000_000_000
        t["burst"] = 4_000_000_000
        t["daily"] = 10**15
json.dump(tiers, open(sys.argv[2], "w"), indent=2)
PY
  echo "== enterprise limits raised out of reach (CITECAST_TIERS=$CITECAST_TIERS); other tiers as shipped"
}

# Starts `serve` on DATA_DIR, logging to LOG, and waits for /readyz 200 (600 s at most);
# sets SERVER_PID and READY_S.
start_server() {
  local log=$1 started
  if curl -s -o /dev/null "$BASE/healthz"; then
    echo "something already answers on $ADDR; set PORT to a free port" >&2
    exit 1
  fi
  started=$(now)
  CITECAST_LOG=${CITECAST_LOG:-info} "$BIN" serve --data-dir "$DATA_DIR" --addr "$ADDR" >"$log" 2>&1 &
  SERVER_PID=$!
  while [[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz" || true) != 200 ]]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "the server exited before it was ready; its log:" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    if awk -v a="$started" -v b="$(now)" 'BEGIN { exit !(b - a > 600) }'; then
      echo "the server was not ready after 600 s; its log:" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    sleep 0.02
  done
  READY_S=$(elapsed "$started")
}
