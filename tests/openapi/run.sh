#!/usr/bin/env bash
# The gate's OpenAPI document, checked from outside (tests/openapi/check.py
# says what runs): a standard validator, a generated Python client and a
# generated TypeScript client each driving a real gate, and a bounded
# schemathesis run. Python tools go into a virtual environment under
# target/ (tests/openapi/requirements.txt, pinned); the npm ones into
# tests/openapi/ts/node_modules (package-lock.json, `npm ci`).
#
#   tests/openapi/run.sh                     # exit 0 passed, 1 failed, 77 skipped
#   OPENAPI_NO_BUILD=1 tests/openapi/run.sh  # use target/debug/recourse as it is
#   RECOURSE_BIN=/path/recourse ...          # another binary (implies no build)
#   OPENAPI_VENV=/path/venv ...              # another virtual environment
#   OPENAPI_MAX_EXAMPLES=N OPENAPI_SEED=S    # schemathesis's bound and seed
#   OPENAPI_KEEP=1                           # keep the work dir (printed)
#
# Prints `SKIPPED: why` and exits 77 only when python3, venv, pip, node or
# npm (or the packages) cannot be had; the caller decides whether a skip is
# a failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/openapi"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${OPENAPI_VENV:-$TARGET/openapi-venv}"

say() { printf '[openapi-tests] %s\n' "$*"; }
skip() { say "SKIPPED: $*"; exit 77; }

command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || skip "python3 $(python3 -V 2>&1) is older than 3.10, which openapi-python-client needs"
command -v node >/dev/null 2>&1 || skip "node is not installed"
command -v npm >/dev/null 2>&1 || skip "npm is not installed"

if [ ! -x "$VENV/bin/python" ]; then
  say "creating the virtual environment $VENV"
  python3 -m venv "$VENV" >/dev/null 2>&1 || { rm -rf "$VENV"; skip "python3 -m venv failed (on Debian: apt-get install python3-venv)"; }
fi
"$VENV/bin/python" -m pip --version >/dev/null 2>&1 || skip "pip is not available in $VENV"

# Install (again) only when the requirements changed.
STAMP="$VENV/.recourse-openapi-requirements"
if ! cmp -s "$HERE/requirements.txt" "$STAMP"; then
  say "pip install -r tests/openapi/requirements.txt"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt" \
    || skip "pip could not install tests/openapi/requirements.txt (is PyPI reachable?)"
  cp "$HERE/requirements.txt" "$STAMP"
fi

NPM_STAMP="$HERE/ts/node_modules/.recourse-openapi-lock"
if ! cmp -s "$HERE/ts/package-lock.json" "$NPM_STAMP"; then
  say "npm ci (tests/openapi/ts)"
  (cd "$HERE/ts" && npm ci --no-audit --no-fund --silent) \
    || skip "npm ci could not install tests/openapi/ts (is the npm registry reachable?)"
  cp "$HERE/ts/package-lock.json" "$NPM_STAMP"
fi

if [ -n "${RECOURSE_BIN:-}" ]; then
  say "using RECOURSE_BIN=$RECOURSE_BIN"
elif [ "${OPENAPI_NO_BUILD:-0}" = 1 ]; then
  export RECOURSE_BIN="$TARGET/debug/recourse"
else
  say "cargo build -p recourse-cli"
  (cd "$ROOT" && cargo build -q -p recourse-cli) || { say "FAILED: cargo build -p recourse-cli"; exit 1; }
  export RECOURSE_BIN="$TARGET/debug/recourse"
fi
[ -x "$RECOURSE_BIN" ] || { say "FAILED: no binary at $RECOURSE_BIN"; exit 1; }

"$VENV/bin/python" "$HERE/check.py"
