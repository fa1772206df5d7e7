#!/usr/bin/env bash
# The MCP tests: the official MCP Python SDK (`mcp` from PyPI) as the client
# of `recourse mcp` (stdio) and of `/mcp` on `recourse serve` (streamable
# HTTP). Creates a virtual environment under target/, builds `recourse`
# (debug), and runs tests/mcp/test_mcp.py with pytest.
#
#   tests/mcp/run.sh                 # exit 0 passed, 1 failed, 77 skipped
#   MCP_NO_BUILD=1 tests/mcp/run.sh  # use target/debug/recourse as it is
#   RECOURSE_BIN=/path/recourse ...  # another binary (implies no build)
#   MCP_VENV=/path/venv ...          # another virtual environment
#   extra arguments go to pytest (e.g. -k stdio)
#
# Prints `SKIPPED: why` and exits 77 when python3, venv or pip (or the
# packages) cannot be had; the caller decides whether a skip is a failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/mcp"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${MCP_VENV:-$TARGET/mcp-venv}"

say() { printf '[mcp-tests] %s\n' "$*"; }
skip() { say "SKIPPED: $*"; exit 77; }

command -v python3 >/dev/null 2>&1 || skip "python3 is not installed"
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || skip "python3 $(python3 -V 2>&1) is older than 3.10, which the mcp SDK needs"

if [ ! -x "$VENV/bin/python" ]; then
  say "creating the virtual environment $VENV"
  python3 -m venv "$VENV" >/dev/null 2>&1 || { rm -rf "$VENV"; skip "python3 -m venv failed (on Debian: apt-get install python3-venv)"; }
fi
"$VENV/bin/python" -m pip --version >/dev/null 2>&1 || skip "pip is not available in $VENV"

# Install (again) only when the requirements changed.
STAMP="$VENV/.recourse-mcp-requirements"
if ! cmp -s "$HERE/requirements.txt" "$STAMP"; then
  say "pip install -r tests/mcp/requirements.txt"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt" \
    || skip "pip could not install tests/mcp/requirements.txt (is PyPI reachable?)"
  cp "$HERE/requirements.txt" "$STAMP"
fi

if [ -n "${RECOURSE_BIN:-}" ]; then
  say "using RECOURSE_BIN=$RECOURSE_BIN"
elif [ "${MCP_NO_BUILD:-0}" = 1 ]; then
  export RECOURSE_BIN="$TARGET/debug/recourse"
else
  say "cargo build -p recourse-cli"
  (cd "$ROOT" && cargo build -q -p recourse-cli) || { say "FAILED: cargo build -p recourse-cli"; exit 1; }
  export RECOURSE_BIN="$TARGET/debug/recourse"
fi
[ -x "$RECOURSE_BIN" ] || { say "FAILED: no binary at $RECOURSE_BIN"; exit 1; }

cd "$HERE"
"$VENV/bin/python" -m pytest -p no:cacheprovider -q test_mcp.py "$@"
status=$?
if [ "$status" -eq 5 ]; then
  # pytest's "no tests collected": never a silent pass.
  say "FAILED: pytest collected no tests"
  exit 1
fi
exit "$status"
