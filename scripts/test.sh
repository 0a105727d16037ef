#!/usr/bin/env bash
# Everything `make test` runs: formatting, the web UI's build and component tests, then the
# release build with every test and the browser tests against it, then the whole suite under
# ASan+UBSan, then the concurrent core (store, jobs, the council, metrics) under TSan, then a short
# libFuzzer run of each parser of outside input (FUZZ_SECONDS each, fuzz/README.md). Each ctest
# step runs under scripts/with-postgres.sh: a throwaway PostgreSQL of its own for the PostgreSQL
# store's tests (CONCLAVE_TEST_PG_URL), stopped and removed when the step ends.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc)
step() { printf '\n=== %s ===\n' "$*"; }

step "format check"
mapfile -t sources < <(git ls-files '*.cpp' '*.hpp')
clang-format --dry-run -Werror "${sources[@]}"

step "web UI: build (type check + bundle) and component tests (Vitest)"
scripts/build-web.sh
(cd web && npx prettier --check --log-level warn . && npx vitest run)

step "release build + all tests"
cmake --preset release >/dev/null
cmake --build build/release -j "$jobs"
scripts/with-postgres.sh ctest --preset release -j "$jobs"

step "browser tests: Playwright + chromium against the release server and fake-llm"
(cd web && CONCLAVE_BIN_DIR="$PWD/../build/release/bin" npx vitest run --config vitest.e2e.config.ts)
echo "screenshots: build/artifacts/browser/"

step "ASan+UBSan build + all tests"
cmake --preset asan >/dev/null
cmake --build build/asan -j "$jobs"
scripts/with-postgres.sh ctest --preset asan -j "$jobs"

step "TSan build + concurrent core tests"
cmake --preset tsan >/dev/null
cmake --build build/tsan -j "$jobs" --target store_test jobs_test events_test council_test core_test conclave
scripts/with-postgres.sh ctest --preset tsan -j "$jobs" -R 'StoreContract|PostgresStoreTest|GroupCommit|EngineTest|Backoff|HubTest|CouncilJobTest|ThroughputTest|MetricsTest|RemoteFeedTest'

step "libFuzzer: the parsers of outside input"
FUZZ_SECONDS="${FUZZ_SECONDS:-15}" scripts/fuzz.sh
