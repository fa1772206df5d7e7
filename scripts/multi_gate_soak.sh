#!/usr/bin/env bash
# The multi-gate soak (issue 13): three gates on a fresh database of the
# PostgreSQL at 127.0.0.1:5432, concurrent clients, a freeze in the middle,
# a random gate SIGKILLed and restarted every 2-4 s, for SECONDS (default
# 600) from SEED (default 1); a checker fails the run on any lost, doubled
# or frozen-through execution, a broken chain or a write left in flight.
# CI runs the short fixed-seed version (multi_gate_soak_ci).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
seed="${2:-1}"
echo "multi-gate soak: ${secs} s, seed ${seed} (load: $(cut -d' ' -f1-3 /proc/loadavg))"
RECOURSE_REQUIRE_PG=1 RECOURSE_MULTI_SOAK_SECS="$secs" RECOURSE_MULTI_SOAK_SEED="$seed" \
  cargo nextest run --workspace -E 'test(=multi_gate_soak::multi_gate_soak)' \
  --run-ignored all --no-capture
