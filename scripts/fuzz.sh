#!/usr/bin/env bash
# Fuzzes the gate's input edges (the cargo-fuzz targets in fuzz/): builds
# them once, runs each for a bounded time, fails on any crash, and prints
# per target the executions and the coverage libFuzzer reached.
#
#   scripts/fuzz.sh --ci                 each target ~20 s, fixed seed (scripts/test.sh)
#   scripts/fuzz.sh 3600                 each target for 3600 s (a hand run)
#   scripts/fuzz.sh 300 fs_plan sql_plan only these targets
#
# Targets: check_input (`recourse check`), write_body (POST /v1/writes),
# catalog_body (POST /v1/catalog), mcp_message (JSON-RPC to the MCP server),
# fs_plan (the fs connector's action and path checks), sql_plan (the sql
# connector's planner). Each starts from its seed corpus in fuzz/corpus/
# with the words of fuzz/dict/<target>.dict (both committed; `python3
# fuzz/seeds.py` writes them from the examples) and writes what it finds
# elsewhere: a fresh temporary folder under --ci, target/fuzz/corpus/<target>
# in a hand run (kept, so the next run starts from it).
#
# A crash leaves its input in target/fuzz/artifacts/<target>/; the script
# prints the command that replays it. Stable toolchain: cargo-fuzz's flags
# are nightly-only, so RUSTC_BOOTSTRAP=1 is set; no sanitizer (`-s none`),
# whose cost buys nothing in safe Rust, and the dev profile of
# fuzz/Cargo.toml (opt-level 1), which builds in a fraction of the time of
# cargo-fuzz's default release build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
say() { printf '[fuzz] %s\n' "$*"; }

ALL=(check_input write_body catalog_body mcp_message fs_plan sql_plan)
ci=0
if [ "${1:-}" = "--ci" ]; then
  ci=1
  seconds="${FUZZ_SECONDS:-20}"
  shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  seconds="$1"
  shift
else
  echo "usage: scripts/fuzz.sh --ci | SECONDS [TARGET...]" >&2
  exit 2
fi
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then targets=("${ALL[@]}"); fi
for t in "${targets[@]}"; do
  [ -f "fuzz/fuzz_targets/$t.rs" ] || { echo "no fuzz target \`$t\` (one of: ${ALL[*]})" >&2; exit 2; }
done

if cargo fuzz --version >/dev/null 2>&1; then
  say "cargo-fuzz: present ($(cargo fuzz --version))"
else
  say "cargo-fuzz: cargo install cargo-fuzz --locked"
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
# One target dir for the repository: the fuzz build lives under target/fuzz.
TARGET_DIR="$ROOT/target/fuzz"
BUILD=(--dev -s none --target-dir "$TARGET_DIR")
BIN="$TARGET_DIR/x86_64-unknown-linux-gnu/debug"

started=$(date +%s)
say "building the fuzz targets once (cargo fuzz build ${BUILD[*]})"
(cd fuzz && cargo fuzz build "${BUILD[@]}")
built=$(date +%s)
say "built in $((built - started)) s"

failed=()
summary=()
for t in "${targets[@]}"; do
  artifacts="$TARGET_DIR/artifacts/$t"
  mkdir -p "$artifacts"
  if [ "$ci" = 1 ]; then
    work="$(mktemp -d "${TMPDIR:-/tmp}/recourse-fuzz-$t.XXXXXX")"
    seed=(-seed=20260501)
  else
    work="$TARGET_DIR/corpus/$t"
    mkdir -p "$work"
    seed=()
  fi
  log="$TARGET_DIR/$t.log"
  say "$t: ${seconds} s from fuzz/corpus/$t ($(ls "fuzz/corpus/$t" | wc -l) seeds)"
  status=0
  # The first folder takes what the run finds; the committed seeds are
  # only read.
  "$BIN/$t" "$work" "fuzz/corpus/$t" \
    -max_total_time="$seconds" "${seed[@]}" -timeout=30 -rss_limit_mb=2048 \
    -dict="fuzz/dict/$t.dict" -artifact_prefix="$artifacts/" -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)"
  execs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)"
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    tail -60 "$log"
    crash="$(ls -t "$artifacts" 2>/dev/null | head -1 || true)"
    say "$t: FAILED (exit $status); log $log"
    if [ -n "$crash" ]; then
      say "replay: RUSTC_BOOTSTRAP=1 $BIN/$t $artifacts/$crash"
    fi
    summary+=("$(printf '%-13s %-7s execs %-10s %s' "$t" FAILED "${execs:-?}" "${done_line:-}")")
  else
    say "$t: ${done_line:-no DONE line (see $log)}"
    summary+=("$(printf '%-13s %-7s execs %-10s %s' "$t" ok "${execs:-?}" "${done_line:-}")")
  fi
  if [ "$ci" = 1 ]; then rm -rf "$work"; fi
done

say "summary (${seconds} s per target; build $((built - started)) s, total $(( $(date +%s) - started )) s)"
for line in "${summary[@]}"; do echo "  $line"; done
if [ "${#failed[@]}" -gt 0 ]; then
  say "crashes in: ${failed[*]}"
  exit 1
fi
