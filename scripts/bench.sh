#!/usr/bin/env bash
# The scale benchmarks (issue 15): the decision against a bare petgraph BFS on
# a 1,000,000-resource catalog, and the submit rate and memory as the catalog
# grows from 1,000 to 100,000 resources. Release builds, a few minutes; not
# part of scripts/test.sh or CI. Each prints ratios against the bare
# alternative measured in the same run, with min / median / max and the load
# average; BENCHMARKS.md has the figures and how to read them.
#
#   scripts/bench.sh              both
#   scripts/bench.sh decide       one of them (decide | catalog_growth)
#
# DECIDE_QUICK=0 adds criterion's own runs to `decide`; GROWTH_WRITES,
# GROWTH_CLIENTS, GROWTH_ROUNDS and GROWTH_SIZES shape `catalog_growth`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
echo "[bench] $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for bench in "${@:-decide catalog_growth}"; do
  for b in $bench; do
    echo "[bench] $b"
    DECIDE_QUICK="${DECIDE_QUICK:-1}" nice cargo bench --workspace --bench "$b"
  done
done
