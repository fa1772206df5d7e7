#!/usr/bin/env bash
# End-to-end test of the review console: builds the custom-protocol app,
# starts a gate (the real `recourse serve` when it builds and runs, else the
# mock in mock-gate.mjs, and it says which), starts tauri-driver under
# xvfb-run, and drives the app with WebdriverIO (e2e.mjs).
#
# Not part of `cargo test --workspace`: it needs a display server and
# WebKitWebDriver. Prerequisites: scripts/setup.sh.
#
#   tests/console/run.sh                 # real gate if possible, else mock
#   E2E_GATE=mock tests/console/run.sh   # force the mock
#   E2E_GATE=real tests/console/run.sh   # fail instead of falling back
#   E2E_REQUIRE=1 ...                    # a missing prerequisite fails (CI)
#   E2E_PERF=1 ...                       # then the performance figures (perf.mjs):
#       a second real gate with 10,000 held writes and a 2,000-resource blast
#       radius; prints a table and writes it to $E2E_OUT/perf.md. Slow: filling
#       the debug gate took 16 min on 2 cores (E2E_PERF_N=2000 for a quick look).
#       Printed, not asserted. Needs the real gate (skipped on the mock).
# Screenshots: $E2E_OUT (default .e2e-out/console/shots).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/console"
OUT="${E2E_OUT:-$ROOT/.e2e-out/console}"
SHOTS="$OUT/shots"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
APP="$TARGET/debug/recourse-console"
GATE_MODE="${E2E_GATE:-auto}"
PORT="${E2E_PORT:-7432}"

say() { printf '[console-e2e] %s\n' "$*"; }
skip() {
  say "SKIPPED: $*"
  if [ "${E2E_REQUIRE:-0}" = 1 ]; then exit 1; fi
  exit 0
}

for tool in xvfb-run tauri-driver WebKitWebDriver node npm cargo curl; do
  command -v "$tool" >/dev/null 2>&1 || skip "the whole console E2E: \`$tool\` is not installed (run scripts/setup.sh)"
done

rm -rf "$OUT"; mkdir -p "$SHOTS" "$OUT/tmp"
TMP="$OUT/tmp"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

[ -d "$ROOT/ui/node_modules" ] || (say "npm ci in ui/"; cd "$ROOT/ui" && npm ci --no-audit --no-fund) || exit 1
[ -d "$HERE/node_modules" ] || (say "npm ci in tests/console/"; cd "$HERE" && npm ci --no-audit --no-fund) || exit 1

if [ "${E2E_NO_BUILD:-0}" = 1 ]; then
  say "E2E_NO_BUILD=1: using the binaries already in $TARGET/debug"
  [ -x "$APP" ] || skip "E2E_NO_BUILD=1 but $APP is missing"
else
  say "building the UI (ui/dist)"
  (cd "$ROOT/ui" && npm run build >"$OUT/ui-build.log" 2>&1) || { tail -30 "$OUT/ui-build.log"; exit 1; }
  say "building the app with the UI embedded (custom-protocol, debug)"
  (cd "$ROOT" && cargo build -p recourse-console --features tauri/custom-protocol >"$OUT/app-build.log" 2>&1) || { tail -30 "$OUT/app-build.log"; exit 1; }
fi

wait_http() { # url token
  for _ in $(seq 1 100); do
    curl -fsS -H "authorization: Bearer $2" "$1/v1/whoami" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

start_real_gate() {
  [ "$GATE_MODE" = mock ] && return 1
  say "building the gate (recourse-cli)"
  # E2E_GATE_PREBUILT=1: scripts/test.sh built target/debug/recourse already.
  if [ "${E2E_NO_BUILD:-0}" != 1 ] && [ "${E2E_GATE_PREBUILT:-0}" != 1 ] && ! (cd "$ROOT" && cargo build -p recourse-cli >"$OUT/gate-build.log" 2>&1); then
    say "the gate does not build (see $OUT/gate-build.log)"; return 1
  fi
  local bin="$TARGET/debug/recourse" data="$TMP/gate-data" fsroot="$TMP/fs-root"
  "$bin" serve --help >/dev/null 2>&1 || { say "\`recourse serve\` is not there yet"; return 1; }
  mkdir -p "$data" "$fsroot/reports/q3" "$fsroot/customers" "$fsroot/patients" "$fsroot/ledger"
  printf 'region,total\nnorth,42\n' >"$fsroot/reports/q3/summary.csv"
  printf 'quarterly notes\n' >"$fsroot/reports/q3/notes.txt"
  printf '{"account":"acct-1"}\n' >"$fsroot/customers/acct-1.json"
  printf '{"account":"acct-2"}\n' >"$fsroot/customers/acct-2.json"
  printf '{"intake":"0932"}\n' >"$fsroot/patients/intake-0932.json"
  printf '{"intake":"0935"}\n' >"$fsroot/patients/intake-0935.json"
  printf '{"account":"acct-3"}\n' >"$fsroot/customers/acct-3.json"
  printf '{"account":"acct-4"}\n' >"$fsroot/customers/acct-4.json"
  printf 'day,amount\n1,100\n' >"$fsroot/ledger/jan.csv"
  local t
  for role in reviewer incident_lead risk_officer agent admin; do
    t="$("$bin" token create --data-dir "$data" --name "e2e-$role" --role "$role" 2>>"$OUT/gate.log" | tail -1)" || return 1
    [ -n "$t" ] || { say "token create printed nothing"; return 1; }
    printf -v "TOK_$role" '%s' "$t"
  done
  "$bin" serve --data-dir "$data" --listen "127.0.0.1:$PORT" --fs-root "$fsroot" >>"$OUT/gate.log" 2>&1 &
  GATE_PID=$!; PIDS+=("$GATE_PID")
  GATE_URL="http://127.0.0.1:$PORT"
  wait_http "$GATE_URL" "$TOK_reviewer" || { say "the gate did not answer (see $OUT/gate.log)"; return 1; }
  local post=(curl -sS -H "content-type: application/json")
  # Third-party bearers make the two deletes wait for a person.
  "${post[@]}" -H "authorization: Bearer $TOK_risk_officer" "$GATE_URL/v1/catalog" -d "{\"resources\": [
    {\"id\": \"fs:$fsroot/customers\", \"bearer\": \"customer\", \"title\": \"Customer files\"},
    {\"id\": \"fs:$fsroot/customers/acct-1.json\", \"bearer\": \"customer\", \"title\": \"Account acct-1\"},
    {\"id\": \"crm:acct-1\", \"reach\": \"observed\", \"bearer\": \"customer\", \"title\": \"CRM record\"},
    {\"id\": \"mail:acct-1-closure\", \"reach\": \"external\", \"bearer\": \"customer\", \"title\": \"Closure letter\"},
    {\"id\": \"fs:$fsroot/patients\", \"bearer\": \"patient\", \"title\": \"Patient intake\"},
    {\"id\": \"fs:$fsroot/customers/acct-3.json\", \"bearer\": \"customer\", \"title\": \"Account acct-3\"},
    {\"id\": \"crm:acct-3\", \"reach\": \"observed\", \"bearer\": \"customer\", \"title\": \"CRM record acct-3\"},
    {\"id\": \"mail:acct-3-closure\", \"reach\": \"external\", \"bearer\": \"customer\", \"title\": \"Closure letter acct-3\"},
    {\"id\": \"fs:$fsroot/ledger/jan.csv\", \"bearer\": \"institution\", \"title\": \"January ledger export\"},
    {\"id\": \"report:monthly\", \"reach\": \"observed\", \"bearer\": \"institution\", \"title\": \"Monthly report\"}], \"edges\": [
    {\"from\": \"fs:$fsroot/customers/acct-3.json\", \"to\": \"crm:acct-3\", \"why\": \"the CRM syncs the account file nightly\"},
    {\"from\": \"crm:acct-3\", \"to\": \"mail:acct-3-closure\", \"why\": \"a closed CRM record sends the customer a closure letter\"},
    {\"from\": \"fs:$fsroot/ledger/jan.csv\", \"to\": \"report:monthly\", \"why\": \"the monthly report reads the export\"},
    {\"from\": \"fs:$fsroot/customers/acct-1.json\", \"to\": \"crm:acct-1\", \"why\": \"the CRM syncs the account file nightly\"},
    {\"from\": \"crm:acct-1\", \"to\": \"mail:acct-1-closure\", \"why\": \"a closed CRM record sends the customer a closure letter\"}]}" >"$TMP/catalog.json"
  if grep -q "\"error\"" "$TMP/catalog.json"; then say "catalog upsert failed: $(cat "$TMP/catalog.json")"; return 1; fi
  submit() { # key path intent [more proposal fields, as JSON after a comma]
    "${post[@]}" -H "authorization: Bearer $TOK_agent" "$GATE_URL/v1/writes" \
      -d "{\"intent\": \"$3\", \"idempotency_key\": \"e2e-$1\", \"action\": {\"connector\": \"fs\", \"op\": \"delete\", \"path\": \"$2\"}${4:-}}" >"$TMP/$1.json"
    node -e 'const w=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); if(!w.id){console.error(JSON.stringify(w));process.exit(1)}; console.log(w.id+" "+w.status)' "$TMP/$1.json"
  }
  local a r x f
  a="$(submit approve "$fsroot/customers/acct-1.json" "Delete closed customer account file acct-1")" || return 1
  r="$(submit reject "$fsroot/patients/intake-0932.json" "Delete stale patient intake form 0932")" || return 1
  x="$(submit exec "$fsroot/reports/q3" "Delete the Q3 report folder (superseded)")" || return 1
  f="$(submit frozen "$fsroot/customers/acct-2.json" "Delete closed customer account file acct-2")" || return 1
  # Five reasons, the decisive one a window that closed six hours ago (a
  # manual step the agent declares, bounded by it); one the institution
  # alone bears (quick keys); one a patient bears (two approvals).
  local closed s l p
  closed="$(date -u -d '-6 hours' +%Y-%m-%dT%H:%M:%SZ)"
  s="$(submit reasons "$fsroot/customers/acct-3.json" "Delete closed customer account file acct-3" ", \"rollback\": {\"steps\": [{\"restores\": [\"crm:acct-3\"], \"op\": {\"kind\": \"manual\", \"note\": \"ask CRM operations to reopen the record\"}, \"requires\": [{\"id\": \"reopen-window\", \"kind\": \"window\", \"until\": \"$closed\"}]}]}")" || return 1
  l="$(submit low "$fsroot/ledger/jan.csv" "Delete the January ledger export (the monthly report reads it)")" || return 1
  p="$(submit partial "$fsroot/patients/intake-0935.json" "Delete stale patient intake form 0935")" || return 1
  say "gate writes: approve=[$a] reject=[$r] executed=[$x] frozen=[$f] reasons=[$s] low=[$l] partial=[$p]"
  [[ "$a" == *" held" && "$r" == *" held" && "$x" == *" executed" && "$f" == *" held" && "$s" == *" held" && "$l" == *" held" && "$p" == *" held" ]] || { say "the gate did not hold/execute as the test expects"; return 1; }
  [ ! -e "$fsroot/reports/q3" ] || { say "the executed delete left $fsroot/reports/q3 on disk"; return 1; }
  export E2E_GATE_URL="$GATE_URL" E2E_REVIEWER_TOKEN="$TOK_reviewer" E2E_INCIDENT_TOKEN="$TOK_incident_lead" E2E_RISK_TOKEN="$TOK_risk_officer" E2E_AGENT_TOKEN="$TOK_agent"
  export E2E_ADMIN_TOKEN="$TOK_admin" E2E_OBSERVE_PATH="$fsroot/customers/acct-4.json"
  export E2E_HELD_APPROVE="${a%% *}" E2E_HELD_REJECT="${r%% *}" E2E_EXECUTED="${x%% *}" E2E_HELD_FROZEN="${f%% *}"
  export E2E_HELD_REASONS="${s%% *}" E2E_HELD_LOW="${l%% *}" E2E_HELD_PARTIAL="${p%% *}"
  # The risk officer's edit: the patients folder becomes the institution's,
  # so the held patient write (two approvals, one given) would run.
  export E2E_CATALOG_EDIT="fs:$fsroot/patients" E2E_CATALOG_EDIT_SEARCH="patients" E2E_CATALOG_EDIT_WRITE="${p%% *}"
  export E2E_CATALOG_EDIT_REACHED="fs:$fsroot/patients/intake-0935.json"
  export E2E_CATALOG_SEARCH="acct-1" E2E_CATALOG_RESOURCE="crm:acct-1" E2E_CATALOG_REACHED_BY="fs:$fsroot/customers/acct-1.json" E2E_CATALOG_REACHES="mail:acct-1-closure"
  export E2E_RESTORED="[\"$fsroot/reports/q3/summary.csv\", \"$fsroot/reports/q3/notes.txt\"]"
  export E2E_STOP_GATE_CMD="kill -TERM $GATE_PID"
  GATE_KIND="the real gate (recourse serve)"
  return 0
}

start_mock_gate() {
  node "$HERE/mock-gate.mjs" --port "$PORT" --fs-root "$TMP/fs-root" --vault "$TMP/vault" >"$TMP/mock.json" 2>"$OUT/mock.log" &
  GATE_PID=$!; PIDS+=("$GATE_PID")
  for _ in $(seq 1 50); do [ -s "$TMP/mock.json" ] && break; sleep 0.1; done
  local j; j="$(cat "$TMP/mock.json")"
  q() { node -e 'const v=JSON.parse(process.argv[1])[process.argv[2].split(".")[0]]; const w=process.argv[2].split(".").slice(1).reduce((x,k)=>x[k],v); console.log(typeof w==="string"?w:JSON.stringify(w))' "$j" "$1"; }
  export E2E_GATE_URL="$(q url)" E2E_REVIEWER_TOKEN="$(q tokens.reviewer)" E2E_INCIDENT_TOKEN="$(q tokens.incident_lead)" E2E_RISK_TOKEN="$(q tokens.risk_officer)" E2E_AGENT_TOKEN="$(q tokens.agent)"
  export E2E_HELD_APPROVE="$(q ids.approve)" E2E_HELD_REJECT="$(q ids.reject)" E2E_EXECUTED="$(q ids.executed)" E2E_HELD_FROZEN="$(q ids.frozen)" E2E_OUTCOME_UNKNOWN="$(q ids.unknown)"
  export E2E_HELD_REASONS="$(q ids.reasons)" E2E_HELD_LOW="$(q ids.low)" E2E_HELD_PARTIAL="$(q ids.partial)"
  export E2E_CATALOG_SEARCH="$(q catalog.search)" E2E_CATALOG_RESOURCE="$(q catalog.resource)" E2E_CATALOG_REACHED_BY="$(q catalog.reached_by)" E2E_CATALOG_REACHES="$(q catalog.reaches)"
  export E2E_RESTORED="$(q restored)"
  export E2E_STOP_GATE_CMD="kill -TERM $GATE_PID"
  wait_http "$E2E_GATE_URL" "$E2E_REVIEWER_TOKEN" || { say "the mock gate did not start"; exit 1; }
  GATE_KIND="the MOCK gate (tests/console/mock-gate.mjs)"
}

if ! start_real_gate; then
  [ "$GATE_MODE" = real ] && { say "E2E_GATE=real and the real gate is not usable"; exit 1; }
  [ -n "${GATE_PID:-}" ] && kill -TERM "$GATE_PID" 2>/dev/null
  say "SKIPPED the real gate; using the mock gate instead. Not covered: the gate's own decisions, capture and restore."
  start_mock_gate
fi
say "driving the app against $GATE_KIND at $E2E_GATE_URL"

export E2E_APP="$APP" E2E_SHOTS="$SHOTS"
export RECOURSE_GATE_URL="$E2E_GATE_URL" RECOURSE_TOKEN="$E2E_REVIEWER_TOKEN"
export RECOURSE_CONSOLE_NO_KEYRING=1 XDG_CONFIG_HOME="$TMP/config" XDG_DATA_HOME="$TMP/data" XDG_CACHE_HOME="$TMP/cache"

drive() { # script log
  xvfb-run -a -s '-screen 0 1280x800x24' bash -c '
    tauri-driver >>"'"$OUT"'/tauri-driver.log" 2>&1 &
    TD=$!
    for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:4444/status && break; sleep 0.1; done
    node "'"$HERE/$1"'"; rc=$?
    kill -TERM $TD; wait $TD 2>/dev/null
    exit $rc
  ' 2>&1 | tee "$OUT/$2"
  return "${PIPESTATUS[0]}"
}
drive e2e.mjs e2e.log
rc=$?

# Performance figures: a fresh real gate, so the functional run above is not
# disturbed and the queue holds exactly the writes made for it.
run_perf() {
  local bin="$TARGET/debug/recourse" data="$TMP/perf-data" root="$TMP/perf-root" port=$((PORT + 1)) t role
  mkdir -p "$data" "$root"
  for role in reviewer risk_officer agent; do
    t="$("$bin" token create --data-dir "$data" --name "perf-$role" --role "$role" 2>>"$OUT/perf-gate.log" | tail -1)" || return 1
    printf -v "PT_$role" '%s' "$t"
  done
  "$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" --fs-root "$root" >>"$OUT/perf-gate.log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  wait_http "http://127.0.0.1:$port" "$PT_reviewer" || { say "the perf gate did not answer (see $OUT/perf-gate.log)"; return 1; }
  say "perf: filling the gate (10,000 held writes, a 2,000-resource blast radius)"
  local seed
  seed="$(node "$HERE/perf-seed.mjs" --url "http://127.0.0.1:$port" --agent "$PT_agent" --risk "$PT_risk_officer" --dir "$root" --n "${E2E_PERF_N:-10000}")" || return 1
  say "perf: $seed"
  E2E_PERF_SEED="$seed" E2E_PERF_BLAST="$(node -e 'console.log(JSON.parse(process.argv[1]).blast)' "$seed")" \
    E2E_PERF_OUT="$OUT/perf.md" RECOURSE_GATE_URL="http://127.0.0.1:$port" RECOURSE_TOKEN="$PT_reviewer" \
    drive perf.mjs perf.log
  local prc=$?
  kill -TERM "$pid" 2>/dev/null
  return "$prc"
}
# The demo's held writes at 1280x800: the decisive reason, who pays and what
# cannot be undone on screen without scrolling, each one measured and shot.
run_demo_fit() {
  local bin="$TARGET/debug/recourse" dir="$TMP/demo" port=$((PORT + 2)) log="$OUT/demo-gate.log"
  rm -rf "$dir"
  "$bin" demo --dir "$dir" --listen "127.0.0.1:$port" >"$log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  for _ in $(seq 1 240); do
    grep -q "recourse demo ready" "$log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { say "the demo gate stopped (see $log)"; return 1; }
    sleep 0.5
  done
  grep -q "recourse demo ready" "$log" || { say "the demo gate never got ready (see $log)"; return 1; }
  local writes token
  writes="$(node -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")); console.log(JSON.stringify(d.writes.filter((w)=>w.status==="held")))' "$dir/demo.json")" || return 1
  token="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).tokens.reviewer)' "$dir/demo.json")" || return 1
  say "demo fit: $(node -e 'console.log(JSON.parse(process.argv[1]).length)' "$writes") held demo writes at 1280x800"
  E2E_DEMO_WRITES="$writes" RECOURSE_GATE_URL="http://127.0.0.1:$port" RECOURSE_TOKEN="$token" \
    drive demo-fit.mjs demo-fit.log
  local drc=$?
  # `recourse demo` runs its gate as a child process: stop that too, or it
  # keeps the port after this run.
  pkill -TERM -P "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null
  return "$drc"
}
if [ "$GATE_KIND" = "the real gate (recourse serve)" ]; then
  run_demo_fit || { say "the demo's writes do not fit 1280x800 (see $OUT/demo-fit.log)"; [ "$rc" = 0 ] && rc=1; }
fi

if [ "${E2E_PERF:-0}" = 1 ]; then
  if [ "$GATE_KIND" = "the real gate (recourse serve)" ]; then
    run_perf || { say "the performance run failed (see $OUT/perf.log, $OUT/perf-gate.log)"; [ "$rc" = 0 ] && rc=1; }
  else
    say "SKIPPED the performance figures: they need the real gate"
  fi
fi
say "screenshots in $SHOTS ($(ls "$SHOTS" | wc -l) files); gate: $GATE_KIND"
exit "$rc"
