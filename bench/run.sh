#!/usr/bin/env bash
# Runs every benchmark against the release build and prints its figures.
# Extra arguments go to jobs_bench (e.g. --jobs 50000 --skip-rss).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -srm)"
build/release/bin/jobs_bench "$@"
echo
ulimit -n 65536 2>/dev/null || true
build/release/bin/fanout_bench
echo
build/release/bin/resume_bench
echo
build/release/bin/council_bench --councils 100
echo
scripts/with-postgres.sh build/release/bin/cluster_bench
echo
scripts/with-postgres.sh bench/pg_schema_alternatives.sh
