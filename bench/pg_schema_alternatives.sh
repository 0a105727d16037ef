#!/usr/bin/env bash
# Weighs today's jobs schema against two built for HOT updates (pg_schema_alternatives.sql says
# what each is). Run inside scripts/with-postgres.sh:
#   scripts/with-postgres.sh bench/pg_schema_alternatives.sh [ROUNDS] [FILLFACTOR]
# Each round runs every schema in turn on 50,000 jobs (the tables grow over the rounds, as a
# server's do) and prints the wall time and the whole machine's busy CPU time per job, so
# autovacuum's share is counted too. Commits do not wait for fsync here: this is CPU.
set -euo pipefail
cd "$(dirname "$0")"
rounds=${1:-4}
fillfactor=${2:-40}
: "${CONCLAVE_TEST_PG_URL:?run me inside scripts/with-postgres.sh}"
psql() { command psql -q -X -v ON_ERROR_STOP=1 "$CONCLAVE_TEST_PG_URL" "$@"; }
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
# Schema a is the store's own, made by its migrations.
psql -c "DROP SCHEMA IF EXISTS a CASCADE" -c "CREATE SCHEMA a" 2>&1 | grep -v -e NOTICE -e cascade || true
../build/release/bin/conclave migrate --db "$CONCLAVE_TEST_PG_URL?options=-csearch_path%3Da" >/dev/null
psql -v ff="$fillfactor" -f pg_schema_alternatives.sql 2>&1 | grep -v -e NOTICE -e cascade || true
jobs=50000
ticks=$(getconf CLK_TCK)
echo "50,000 jobs per run, fillfactor $fillfactor for b and c; µs per job"
for round in $(seq 1 "$rounds"); do
    for schema in a b c; do
        before=$(busy)
        start=$(date +%s%N)
        psql -c "SET synchronous_commit = off" -c "CALL $schema.run($((jobs / 1000)))"
        end=$(date +%s%N)
        sleep 1 # autovacuum's work on the run's dead rows counts for it
        after=$(busy)
        printf 'round %d  %s: wall %4d  machine CPU %4d\n' "$round" "$schema" \
            $(((end - start) / 1000 / jobs)) $(((after - before) * 1000000 / ticks / jobs))
    done
done
psql -At -F ' ' -c "SELECT schemaname || '.' || relname, n_tup_upd, n_tup_hot_upd FROM \
    pg_stat_user_tables WHERE relname = 'jobs' ORDER BY 1" |
    awk '{printf "%s: %d updates, %d HOT\n", $1, $2, $3}'
