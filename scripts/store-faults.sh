#!/usr/bin/env bash
# The full store fault sweep (RELIABILITY.md, "I/O faults"): the real gate
# with tests/e2e/store_faults.c preloaded, failing the k-th fsync or write
# of its SQLite store (EIO or ENOSPC, once and from then on) for every k,
# on every connector and flow. CI runs the fsync sweep on two flows and
# the ENOSPC write sweep on one (tests/e2e/store_faults.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo nextest run --workspace --no-run
echo "== store fault sweep (load: $(cut -d' ' -f1-3 /proc/loadavg))"
RECOURSE_STORE_FAULTS=full \
  cargo nextest run --workspace -E 'test(full_store_fault_sweep)' --run-ignored all --no-capture
