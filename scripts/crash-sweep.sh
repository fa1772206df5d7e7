#!/usr/bin/env bash
# The full crash sweep (RELIABILITY.md): every gate and connector crash
# point, on every connector (fs write/delete/move, SQL update/delete/insert,
# HTTP with compensation), for a held, an allowed and a rejected write,
# SIGKILLed from outside and restarted; once per seed given (default 1 2 3).
# CI runs each point once (tests/e2e/crash_sweep.rs); this is the long run.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${*:-1 2 3}"
cargo nextest run --workspace --no-run
for seed in $seeds; do
  echo "== crash sweep, seed $seed (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  RECOURSE_CRASH_SWEEP=full RECOURSE_CRASH_SEED="$seed" \
    cargo nextest run --workspace -E 'test(full_crash_sweep)' --run-ignored all --no-capture
done
