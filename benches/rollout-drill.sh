#!/usr/bin/env bash
# Rollout drill: a new model is trained, put into a 5 % canary, advanced and rolled back
# while wrk loads the forecast endpoint, with zero failed requests; /metrics, /status and
# the audit log show it.
#
#   bash benches/rollout-drill.sh            # or: SKIP_BUILD=1 nice -n 5 bash benches/rollout-drill.sh
#
# 1. builds the release binary (unless SKIP_BUILD=1), starts `citecast serve` on a data dir
#    and waits for /readyz 200 (a fresh data dir ingests the bundled data first, ~30 s);
# 2. trains a candidate (`citecast train --mode at_publication --seed SEED` into
#    DATA_DIR/models, ~15-30 s), then `citecast models rescan` and checks that the server
#    reports the new version loaded;
# 3. creates KEYS enterprise customers with the CLI (through the running server) and writes
#    their secrets into a Lua file, as benches/load.sh does; forecast ids are the paper ids
#    (as load.sh picks them) whose at_publication forecast answers 200;
# 4. runs wrk for DRILL_DURATION on /v1/papers/{id}/forecast?mode=at_publication
#    (benches/forecast_status.lua: round robin over ids and keys, every status counted) and
#    meanwhile drives the rollout, DRILL_STEP seconds apart, printing each command's result:
#      canary VERSION (5 %) -> advance (50 %) -> advance (100 %) -> rollback (control serves)
#      canary VERSION (5 %) -> advance (50 %) -> advance (100 %) -> advance (promoted)
#      -> rollback (the previous model serves again);
#    then `models experiment list` and `models experiment report ID` of both rollouts;
# 5. prints wrk's requests, req/s, latency and status counts, a summary of
#    /status?format=json (SLOs, alerts), the citecast_forecasts_total and
#    citecast_alert_state lines of /metrics, the audit log's actions (paged, --limit 50)
#    and the server log's warnings;
# 6. stops the server (SIGTERM) and exits non-zero when a request failed (non-2xx status or
#    wrk socket error), a rollout command failed, either model served no forecast, or the
#    mode does not end on the model it started with.
#
# Routing hashes the customer into a bucket 0..99, so at 5 % only the customers whose bucket
# is below 5 (about 3 of 64) reach the candidate; 50 % and 100 % make sure it serves.
# Canary guards are the defaults (error rate, p95 compute time, score drift PSI): a guard
# that trips rolls the canary back on its own, and the next `advance` then fails the drill.
#
# Rate limits: as in load.sh, the server runs with a copy of src/accounts/tiers.json (CITECAST_TIERS)
# whose enterprise limits are raised out of reach, so no 429 can occur; the limiter still
# checks every request.
#
# Settings (environment):
#   CITECAST_BENCH_DIR  data dir to serve (kept); default: a fresh temporary dir (removed).
#                       A kept dir keeps its models, rollouts and active choice between drills.
#   PORT                listen port (default 18090)
#   WRK_THREADS         wrk threads (default 2)
#   WRK_CONNECTIONS     wrk connections (default 16: a steady load, not a throughput test)
#   WRK_TIMEOUT         wrk's per-request timeout; a timeout counts as a socket error (default 2s)
#   DRILL_DURATION      the wrk run the rollout happens under, seconds (default 70)
#   DRILL_LEAD          seconds of load before the first rollout command (default 5)
#   DRILL_STEP          seconds between rollout commands (default (DRILL_DURATION - 10) / 9)
#   SEED                training seed of the candidate (default 23; the shipped model is s17)
#   PAPER_IDS           paper ids tried for the forecast run (default 300)
#   KEYS                enterprise customers/keys created and rotated (default 64)
#   SKIP_BUILD=1        use the existing target/release/citecast instead of building it
#   DRILL_KEEP=1        keep the work dir (server log, wrk output, command outputs) and print its path
#
# wrk, the CLI and the server run on the same machine and share its cores.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

PORT=${PORT:-18090}
ADDR=127.0.0.1:$PORT
BASE=http://$ADDR
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-16}
WRK_TIMEOUT=${WRK_TIMEOUT:-2s}
DRILL_DURATION=${DRILL_DURATION:-70}
DRILL_DURATION=${DRILL_DURATION%s}
DRILL_LEAD=${DRILL_LEAD:-5}
DRILL_STEP=${DRILL_STEP:-$(( (DRILL_DURATION - 10) / 9 ))}
(( DRILL_STEP >= 1 )) || DRILL_STEP=1
SEED=${SEED:-23}
PAPER_IDS=${PAPER_IDS:-300}
KEYS=${KEYS:-64}
MODE=at_publication
BIN=$ROOT/target/release/citecast

WORK=$(mktemp -d -t citecast-drill.XXXXXX)
if [[ -n "${CITECAST_BENCH_DIR:-}" ]]; then
  DATA_DIR=$CITECAST_BENCH_DIR
else
  DATA_DIR=$WORK/data
fi
SERVER_PID=""
WRK_PID=""
SERVER_LOG=$WORK/server.log
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

cleanup() {
  if [[ -n "$WRK_PID" ]] && kill -0 "$WRK_PID" 2>/dev/null; then
    kill -TERM "$WRK_PID" 2>/dev/null || true
    wait "$WRK_PID" 2>/dev/null || true
  fi
  stop_server
  # A temporary data dir lives inside $WORK; CITECAST_BENCH_DIR is left alone.
  if [[ "${DRILL_KEEP:-0}" == 1 ]]; then
    rm -rf "$WORK/data"
    echo "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# [HH:MM:SS +seconds since the drill's wrk started]
stamp() {
  awk -v a="${DRILL_STARTED:-$(now)}" -v b="$(now)" -v t="$(date -u +%H:%M:%S)" \
    'BEGIN { printf "[%s +%5.1fs]", t, b - a }'
}
cli() { "$BIN" "$@" --data-dir "$DATA_DIR"; }

# --- tools ------------------------------------------------------------------
need_tools curl zcat ps awk python3
build_release

# --- ids and rate limits (as load.sh) ------------------------------------------
IDS=$WORK/paper_ids.txt
sample_paper_ids "$IDS" "$PAPER_IDS"
raise_enterprise_limits "$WORK/tiers-enterprise-raised.json"

# --- 1. server ----------------------------------------------------------------
if [[ -d "$DATA_DIR/store" ]]; then KIND="existing data dir"; else KIND="empty data dir: bundled ingest + index"; fi
echo "== starting the server on $DATA_DIR ($KIND)"
start_server "$SERVER_LOG"
echo "ready after $READY_S s (pid $SERVER_PID)"

# The model each mode serves, from `models list`.
active_model() {
  cli models list 2>/dev/null | python3 -c '
import json, sys
mode = sys.argv[1]
print(next((m["version"] for m in json.load(sys.stdin)["models"] if m["mode"] == mode and m["active"]), ""))' "$1"
}
CONTROL=$(active_model "$MODE")
[[ -n "$CONTROL" ]] || { echo "no $MODE model is active" >&2; exit 1; }
echo "$MODE is served by $CONTROL"

# --- 2. candidate ---------------------------------------------------------------
echo "== training the candidate: citecast train --mode $MODE --seed $SEED --models-dir $DATA_DIR/models"
started=$(now)
"$BIN" train --mode "$MODE" --seed "$SEED" --models-dir "$DATA_DIR/models" >"$WORK/train.json" 2>"$WORK/train.log" ||
  { echo "training failed:" >&2; tail -20 "$WORK/train.log" >&2; exit 1; }
VERSION=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["models"][0]["version"])' "$WORK/train.json")
python3 - "$WORK/train.json" "$(elapsed "$started")" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["models"][0]
t = m.get("test") or {}
print(f"trained {m['version']} in {sys.argv[2]} s (test ROC-AUC {t.get('roc_auc')}, PR-AUC {t.get('pr_auc')}, "
      f"beats every baseline: {m.get('beats_every_baseline')})")
PY
[[ "$VERSION" != "$CONTROL" ]] || { echo "the candidate $VERSION already serves $MODE" >&2; exit 1; }

echo "== citecast models rescan"
cli models rescan >"$WORK/rescan.json"
echo "rescan: $(cat "$WORK/rescan.json")"
if python3 -c 'import json, sys; sys.exit(sys.argv[2] not in json.load(open(sys.argv[1]))["loaded"])' \
  "$WORK/rescan.json" "$VERSION"; then
  echo "the server loaded $VERSION"
elif cli models list | python3 -c 'import json, sys; sys.exit(sys.argv[1] not in [m["version"] for m in json.load(sys.stdin)["models"]])' "$VERSION"; then
  echo "$VERSION was already loaded (a kept data dir); continuing"
else
  echo "the server did not load $VERSION" >&2
  exit 1
fi

# --- 3. keys and ids ------------------------------------------------------------------
KEYS_TXT=$WORK/keys.txt
KEYS_LUA=$WORK/keys.lua
echo "== creating $KEYS enterprise customers and keys"
started=$(now)
: >"$KEYS_TXT"
for i in $(seq 1 "$KEYS"); do
  cli customers add --name "drill $i-$$" --email "drill-$i-$$@example.com" --tier enterprise 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])' >>"$KEYS_TXT" ||
    { echo "creating key $i failed" >&2; exit 1; }
done
[[ $(grep -c . "$KEYS_TXT") == "$KEYS" ]] || { echo "expected $KEYS keys in $KEYS_TXT" >&2; exit 1; }
python3 - "$KEYS_TXT" "$KEYS_LUA" <<'PY'
import sys
keys = [l.strip() for l in open(sys.argv[1]) if l.strip()]
with open(sys.argv[2], "w") as f:
    f.write("return {\n" + "".join(f'  "{k}",\n' for k in keys) + "}\n")
PY
echo "$KEYS keys in $KEYS_LUA ($(elapsed "$started") s)"
KEY1=$(head -1 "$KEYS_TXT")

FORECAST_IDS=$WORK/forecast_ids.txt
: >"$FORECAST_IDS"
dropped=0
while read -r id; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $KEY1" \
    "$BASE/v1/papers/$id/forecast?mode=$MODE")
  if [[ "$code" == 200 ]]; then echo "$id" >>"$FORECAST_IDS"; else dropped=$((dropped + 1)); fi
done <"$IDS"
echo "== $(wc -l <"$FORECAST_IDS") forecast ids ($dropped of $(wc -l <"$IDS") paper ids dropped: $MODE forecast not 200)"
[[ -s "$FORECAST_IDS" ]] || { echo "no forecast ids" >&2; exit 1; }

# --- 4. the drill -----------------------------------------------------------------------
# JSON helpers for the command outputs below: drill.py WHAT FILE.
DRILL_PY=$WORK/drill.py
cat >"$DRILL_PY" <<'PY'
import collections, json, sys, time

STAGES = [5, 50, 100]
what, path = sys.argv[1], sys.argv[2]
d = json.load(open(path)) if what != "audit" else None
hms = lambda t: time.strftime("%H:%M:%S", time.gmtime(t))
num = lambda v, p=3: "n/a" if v is None else (f"{v:.{p}f}" if isinstance(v, float) else str(v))


def share(r):
    s = r.get("strategy", {})
    if r.get("state", {}).get("state") != "running":
        return 0
    return STAGES[s["stage"]] if s.get("kind") == "canary" else s.get("share")


if what == "step":
    # A rollout command's answer: the rollout and its share, the transition, or the active model.
    out = []
    if "rollout" in d:
        r = d["rollout"]
        out.append("rollout %s %s vs %s: %s, candidate share %s%%"
                   % (r["id"], r["candidate"], r["control"], r["state"]["state"], share(r)))
    if "transition" in d:
        out.append("transition " + d["transition"])
        running = (d.get("rollouts") or {}).get("running") or {}
        out += ["running %s: %s, share %s%%" % (m, r["id"], share(r)) for m, r in running.items()]
        if not running:
            out.append("no rollout running")
    if "active" in d:
        out.append("active %s model: %s" % (d["active"]["mode"], d["active"]["version"]))
    print("; ".join(out) if out else json.dumps(d)[:300])
elif what == "rollout-id":
    if "rollout" in d:
        print(d["rollout"]["id"])
elif what == "last-finished":
    d = d["rollouts"]
    f = d.get("finished") or []
    if f:
        r, s = f[-1], f[-1]["state"]
        reason = ", reason: %s" % s["reason"] if "reason" in s else ""
        print("last finished rollout %s: %s%s; running: %s"
              % (r["id"], s["state"], reason, ", ".join(d.get("running") or {}) or "none"))
elif what == "list":
    d = d["rollouts"]
    running = d.get("running") or {}
    print("running: " + (", ".join("%s: %s" % (m, r["id"]) for m, r in running.items()) or "none"))
    for r in d.get("finished") or []:
        s = r["state"]
        auto = ", automatic: %s" % s["automatic"] if "automatic" in s else ""
        print("finished %s (%s) %s vs %s: %s%s"
              % (r["id"], r["strategy"]["kind"], r["candidate"], r["control"], s["state"], auto))
        for e in r.get("events") or []:
            print("    %s %s" % (hms(e["at"]), e["what"]))
elif what == "report":
    r = d["report"]
    ro = r["rollout"]
    c, k = ro["control_stats"], ro["candidate_stats"]
    print("state %s, share now %s%%, paired %s, agreement %s, mean |diff| %s, drift PSI %s"
          % (ro["state"]["state"], r["share"], ro["paired"], num(r["agreement"]),
             num(r["mean_abs_difference"], 4), num(r["drift_psi"])))
    for arm, name, st in (("control", ro["control"], c), ("candidate", ro["candidate"], k)):
        print("%-9s %s: served %s, scored %s, errors %s, mean score %s, p95 %s ms, AUC served %s, AUC all %s"
              % (arm, name, st["served"], st["scored"], st["errors"], num(r[arm + "_mean_score"]),
                 num(r[arm + "_p95_ms"], 2), num(r[arm + "_served_auc"]), num(r[arm + "_auc"])))
    print("forecast log: %s records, %s papers, %s labelled; guard violation: %s"
          % (r["logged_forecasts"], r["distinct_papers"], r["labelled_papers"], r["guard_violation"] or "none"))
elif what == "status":
    print("ready %s, uptime %s s, incidents %d" % (d.get("ready"), d.get("uptime_secs"), len(d.get("incidents") or [])))
    for s in d.get("slos") or []:
        att = s.get("attained")
        print("  SLO %s: objective %g%%, attained %s, %s/%s bad, budget spent %.1f%%, status %s"
              % (s["name"], s["objective"] * 100, "n/a" if att is None else "%.3f%%" % (att * 100),
                 s.get("bad_requests"), s.get("requests"), (s.get("error_budget_spent_ratio") or 0) * 100,
                 s.get("status")))
    for a in d.get("alerts") or []:
        print("  alert %s: %s (value %s, threshold %s)" % (a["rule"], a["state"], a.get("value"), a.get("threshold")))
elif what == "audit":
    entries = [json.loads(l) for l in open(path) if l.strip()]
    counts = collections.Counter(e["action"] for e in entries)
    print("%d entries: %s" % (len(entries), ", ".join("%s x%d" % kv for kv in counts.items())))
    for e in entries:
        if e["action"].startswith(("model.", "rollout.")):
            print("  #%s %s %s %s %s" % (e["seq"], hms(e["at"]), e["actor"], e["action"], e["target"]))
PY

# The last finished rollout, one line.
last_finished() {
  cli models experiment list >"$WORK/list-now.json" 2>/dev/null && python3 "$DRILL_PY" last-finished "$WORK/list-now.json"
}

STEP_FAILURES=0
STEP_N=0
ROLLOUT_IDS=$WORK/rollout_ids.txt
: >"$ROLLOUT_IDS"
# drill_step LABEL CLI ARGS...: runs one rollout command, prints its result with a time stamp.
drill_step() {
  local label=$1 rc=0
  shift
  STEP_N=$((STEP_N + 1))
  local out=$WORK/step-$STEP_N.json err=$WORK/step-$STEP_N.err
  cli "$@" >"$out" 2>"$err" || rc=$?
  if [[ $rc != 0 ]]; then
    STEP_FAILURES=$((STEP_FAILURES + 1))
    echo "$(stamp) $label: FAILED (exit $rc): $(grep -v '^\s*$' "$err" | sed 's/\x1b\[[0-9;]*m//g' | tail -3 | tr '\n' ' ')"
    return 0
  fi
  echo "$(stamp) $label: $(python3 "$DRILL_PY" step "$out")"
  python3 "$DRILL_PY" rollout-id "$out" >>"$ROLLOUT_IDS" || true
}

WRK_OUT=$WORK/wrk-drill.txt
WRK_ERR=$WORK/wrk-drill.err
echo
echo "== drill: wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${DRILL_DURATION}s --timeout $WRK_TIMEOUT --latency" \
  "on /v1/papers/{id}/forecast?mode=$MODE ($KEYS keys); rollout commands every $DRILL_STEP s after $DRILL_LEAD s"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "   load average before: $LOAD_BEFORE"
DRILL_STARTED=$(now)
wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${DRILL_DURATION}s" --timeout "$WRK_TIMEOUT" --latency \
  -s benches/forecast_status.lua "$BASE" -- "$FORECAST_IDS" "$KEYS_LUA" "$MODE" >"$WRK_OUT" 2>"$WRK_ERR" &
WRK_PID=$!
echo "$(stamp) wrk started (pid $WRK_PID)"

sleep "$DRILL_LEAD"
drill_step "canary $VERSION" models experiment canary "$VERSION"
sleep "$DRILL_STEP"
drill_step "advance" models experiment advance "$MODE"
sleep "$DRILL_STEP"
drill_step "advance" models experiment advance "$MODE"
LOAD_MID=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_MID=$(ps -eo comm= | grep -cE '^(cargo|rustc|clippy|cc|ld|clang|lld)' || true)
sleep "$DRILL_STEP"
drill_step "rollback (ends the canary)" models rollback "$MODE"
echo "$(stamp)   $(last_finished)"
sleep "$DRILL_STEP"
drill_step "canary $VERSION (again)" models experiment canary "$VERSION"
sleep "$DRILL_STEP"
drill_step "advance" models experiment advance "$MODE"
sleep "$DRILL_STEP"
drill_step "advance" models experiment advance "$MODE"
sleep "$DRILL_STEP"
drill_step "advance (promotes)" models experiment advance "$MODE"
echo "$(stamp)   $(last_finished)"
sleep "$DRILL_STEP"
drill_step "rollback (previous model back)" models rollback "$MODE"
echo "$(stamp) rollout commands done; waiting for wrk"

WRK_RC=0
wait "$WRK_PID" || WRK_RC=$?
WRK_PID=""
echo "$(stamp) wrk finished (exit $WRK_RC)"
FINAL_MODEL=$(active_model "$MODE")

echo
echo "== models experiment list"
cli models experiment list >"$WORK/rollouts.json"
python3 "$DRILL_PY" list "$WORK/rollouts.json"

for id in $(cat "$ROLLOUT_IDS"); do
  echo
  echo "== models experiment report $id"
  if cli models experiment report "$id" >"$WORK/report-$id.json" 2>"$WORK/report-$id.err"; then
    python3 "$DRILL_PY" report "$WORK/report-$id.json"
  else
    echo "report failed: $(tail -2 "$WORK/report-$id.err")"
    STEP_FAILURES=$((STEP_FAILURES + 1))
  fi
done

# --- 5. what the server shows ---------------------------------------------------------------
echo
echo "== wrk"
grep -E 'Latency|Req/Sec|requests in|Socket errors|Non-2xx|Requests/sec' "$WRK_OUT" || true
field() { grep -o "$1=[^ ]*" "$WRK_OUT" | head -1 | cut -d= -f2; }
STATUSES=$(grep '^WRK_STATUSES' "$WRK_OUT" | cut -d' ' -f2- || true)
NON2XX=$(field non2xx)
SOCK=$(field socket_errors)
OTHER_STATUS=$(tr ' ' '\n' <<<"$STATUSES" | awk -F= '$1 != "" && ($1 < 200 || $1 > 299) { n += $2 } END { print n + 0 }')
echo "requests $(field requests) in $(field seconds) s: $(field req_s) req/s; latency p50 $(field p50_ms) ms," \
  "p90 $(field p90_ms) ms, p99 $(field p99_ms) ms, max $(field max_ms) ms"
echo "statuses: ${STATUSES:-none}; non-2xx (wrk) $NON2XX; socket errors $SOCK"
if [[ -s "$WRK_ERR" ]]; then
  echo "wrk stderr (first non-2xx responses):"
  head -20 "$WRK_ERR"
fi

echo
echo "== /status?format=json"
curl -s "$BASE/status?format=json" >"$WORK/status.json"
python3 "$DRILL_PY" status "$WORK/status.json"

echo
echo "== /metrics (citecast_forecasts_total, citecast_alert_state)"
curl -s "$BASE/metrics" >"$WORK/metrics.txt"
grep -E '^citecast_(forecasts_total|alert_state)' "$WORK/metrics.txt" || true
served_by() { awk -v m="$1" -F'[{}" ]+' '$1 == "citecast_forecasts_total" && $3 == m { print $NF }' "$WORK/metrics.txt"; }
CONTROL_SERVED=$(served_by "$CONTROL")
CANDIDATE_SERVED=$(served_by "$VERSION")

echo
echo "== citecast audit (--limit 50, paged): actions"
: >"$WORK/audit.jsonl"
after=""
while :; do
  if [[ -n "$after" ]]; then page=$(cli audit --limit 50 --after "$after"); else page=$(cli audit --limit 50); fi
  python3 -c 'import json, sys; [print(json.dumps(e)) for e in json.loads(sys.argv[1])["entries"]]' "$page" >>"$WORK/audit.jsonl"
  after=$(python3 -c 'import json, sys; n = json.loads(sys.argv[1]).get("next_after"); print("" if n is None else n)' "$page")
  [[ -n "$after" ]] || break
done
python3 "$DRILL_PY" audit "$WORK/audit.jsonl"

# --- 6. stop and judge -------------------------------------------------------------------------
echo
echo "== stopping the server (SIGTERM)"
stop_started=$(now)
stop_server
echo "stopped in $(elapsed "$stop_started") s"
echo "server log, warnings and errors (ANSI stripped; at most 40):"
sed 's/\x1b\[[0-9;]*m//g' "$SERVER_LOG" | grep -E ' (WARN|ERROR) ' | tail -40 || echo "  none"
echo "server log, rollout lines:"
sed 's/\x1b\[[0-9;]*m//g' "$SERVER_LOG" | grep -E 'rollout|rolled back|promot|models loaded|rescan' | tail -20 || true

FAILS=()
[[ "$WRK_RC" == 0 ]] || FAILS+=("wrk exited $WRK_RC")
[[ "${NON2XX:-x}" == 0 && "$OTHER_STATUS" == 0 ]] || FAILS+=("non-2xx responses: wrk $NON2XX, counted $OTHER_STATUS")
[[ "${SOCK:-x}" == 0 ]] || FAILS+=("wrk socket errors: $SOCK")
[[ "$STEP_FAILURES" == 0 ]] || FAILS+=("$STEP_FAILURES rollout command(s) failed")
[[ "${CONTROL_SERVED:-0}" -gt 0 ]] || FAILS+=("$CONTROL served no forecast")
[[ "${CANDIDATE_SERVED:-0}" -gt 0 ]] || FAILS+=("$VERSION served no forecast")
[[ "$FINAL_MODEL" == "$CONTROL" ]] || FAILS+=("$MODE ends on '$FINAL_MODEL', not $CONTROL")

echo
echo "================ rollout drill ================"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1); load average before the drill $LOAD_BEFORE, mid-drill $LOAD_MID; compiler processes seen mid-drill: $BUSY_MID"
echo "wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${DRILL_DURATION}s, $KEYS enterprise keys, $(wc -l <"$FORECAST_IDS") ids, $MODE"
echo "load: $(field requests) requests, $(field req_s) req/s, p50 $(field p50_ms) ms, p99 $(field p99_ms) ms; statuses ${STATUSES:-none}; socket errors $SOCK"
echo "forecasts served: $CONTROL ${CONTROL_SERVED:-0}, $VERSION ${CANDIDATE_SERVED:-0}"
echo "rollout commands: $STEP_N run, $STEP_FAILURES failed; $MODE started on $CONTROL and ends on ${FINAL_MODEL:-?}"
if (( ${#FAILS[@]} == 0 )); then
  echo "DRILL PASSED"
else
  printf 'DRILL FAILED: %s\n' "${FAILS[@]}"
  exit 1
fi
