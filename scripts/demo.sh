#!/usr/bin/env bash
# The demo (the README's first command): installs what is missing, builds,
# starts a gate on embedded SQLite in a temporary directory with the seed's
# seven cases (and their safe twins) as live writes against real files, a
# real SQLite database and a local stand-in for the institution's HTTP
# systems, then opens the review console connected to it.
#
#   scripts/demo.sh              gate + console
#   DEMO_NO_CONSOLE=1 scripts/demo.sh   the gate only (e.g. on a server)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf '[demo] %s\n' "$*"; }

bash scripts/setup.sh
say "building the gate and the console (first time: a few minutes)"
cargo build -p recourse-cli
if [ "${DEMO_NO_CONSOLE:-0}" != "1" ]; then
  (cd ui && npm run build >/dev/null)
  cargo build -p recourse-console --features tauri/custom-protocol
fi

DIR="$(mktemp -d /tmp/recourse-demo.XXXXXX)"
PORT="${DEMO_PORT:-7420}"
LOG="$DIR/demo.log"
./target/debug/recourse demo --dir "$DIR/run" --listen "127.0.0.1:$PORT" >"$LOG" 2>&1 &
DEMO_PID=$!
trap 'kill "$DEMO_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  grep -q "recourse demo ready" "$LOG" 2>/dev/null && break
  kill -0 "$DEMO_PID" 2>/dev/null || { cat "$LOG"; say "the demo gate did not start"; exit 1; }
  sleep 0.5
done
grep -v " INFO " "$LOG" || true
TOKEN="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens"]["demo-admin"])' "$DIR/run/demo.json")"

if [ "${DEMO_NO_CONSOLE:-0}" = "1" ]; then
  say "gate at http://127.0.0.1:$PORT; tokens in $DIR/run/demo.json; Ctrl-C to stop"
  wait "$DEMO_PID"
  exit 0
fi
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  say "no display here: the console needs one. The gate runs at http://127.0.0.1:$PORT"
  say "(tokens in $DIR/run/demo.json); Ctrl-C to stop"
  wait "$DEMO_PID"
  exit 0
fi
say "opening the console (signed in as demo-admin: reviewer, risk officer and incident lead)"
RECOURSE_GATE_URL="http://127.0.0.1:$PORT" RECOURSE_TOKEN="$TOKEN" ./target/debug/recourse-console
