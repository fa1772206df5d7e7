#!/usr/bin/env bash
# Every test of Recourse, in one command (the README's second command; CI
# runs it through .ci/run). Installs what is missing, builds once, runs the
# suites in parallel, and says plainly what it skipped and why.
#
#   scripts/test.sh            everything
#   SKIP_CONSOLE=1 scripts/test.sh   without the desktop console's E2E suite
#
# Under CI (CI=true) a skipped PostgreSQL or console suite is a failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf '\n[test] %s\n' "$*"; }
skipped=()

say "system packages and npm dependencies (scripts/setup.sh)"
bash scripts/setup.sh

# PostgreSQL: the connector and store tests use 127.0.0.1:5432 (trust auth,
# database `test`). Start the machine's cluster if it is installed but down.
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  say "PostgreSQL is down; starting the local cluster"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 20); do pg_up && break; sleep 0.5; done
fi
if pg_up; then
  export RECOURSE_REQUIRE_PG=1
  say "PostgreSQL reachable at 127.0.0.1:5432: its tests run and must pass"
else
  unset RECOURSE_REQUIRE_PG
  skipped+=("PostgreSQL tests (nothing listens on 127.0.0.1:5432)")
  say "SKIPPING PostgreSQL tests: nothing listens on 127.0.0.1:5432"
fi

say "rustfmt"
cargo fmt --all -- --check

say "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "unit, property and end-to-end tests (cargo nextest)"
cargo nextest run --workspace --locked --no-fail-fast

say "fuzzing: each cargo-fuzz target for about 20 s from its seed corpus (scripts/fuzz.sh --ci)"
# A crash fails the run; its input is kept under target/fuzz/artifacts/.
bash scripts/fuzz.sh --ci

say "MCP: the official Python SDK as the client, over stdio and HTTP"
# The `recourse` binary nextest just built (workspace features) is the one
# under test; building it again with -p would only recompile for features.
if MCP_NO_BUILD=1 bash tests/mcp/run.sh; then :; else
  status=$?
  if [ "$status" -eq 77 ]; then
    skipped+=("MCP suite (tests/mcp/run.sh said why above)")
  else
    exit "$status"
  fi
fi

say "OpenAPI: a standard validator, generated Python and TypeScript clients, schemathesis"
if OPENAPI_NO_BUILD=1 bash tests/openapi/run.sh; then :; else
  status=$?
  if [ "$status" -eq 77 ]; then
    skipped+=("OpenAPI suite (tests/openapi/run.sh said why above)")
  else
    exit "$status"
  fi
fi

if [ "${SKIP_CONSOLE:-0}" = "1" ]; then
  skipped+=("console E2E (SKIP_CONSOLE=1)")
else
  say "console: UI unit tests (vitest)"
  (cd ui && npm test)
  say "console: the real app under Xvfb over WebDriver"
  if [ "${CI:-}" = "true" ]; then export E2E_REQUIRE=1 E2E_GATE=real; fi
  export E2E_GATE_PREBUILT=1
  if bash tests/console/run.sh; then :; else
    status=$?
    if [ "$status" -eq 77 ]; then
      skipped+=("console E2E (tests/console/run.sh said why above)")
    else
      exit "$status"
    fi
  fi
fi

if [ "${#skipped[@]}" -gt 0 ]; then
  say "SKIPPED:"
  for s in "${skipped[@]}"; do echo "  - $s"; done
  if [ "${CI:-}" = "true" ]; then
    echo "[test] under CI nothing may be skipped: failing" >&2
    exit 1
  fi
fi
say "all tests passed"
