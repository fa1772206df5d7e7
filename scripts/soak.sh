#!/usr/bin/env bash
# The soak (RELIABILITY.md): mixed load on a real gate with a SIGKILL every
# RECOURSE_SOAK_KILL_S seconds (default 120), for SECONDS (default 3600);
# prints RSS, open files and submit latency over time. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-3600}"
echo "soak: ${secs} s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
RECOURSE_SOAK_SECS="$secs" cargo nextest run --workspace -E 'test(=soak::soak)' \
  --run-ignored all --no-capture
