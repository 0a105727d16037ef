#!/usr/bin/env bash
# Everything `make test` runs: formatting, then the release build with every test, then the
# whole suite under ASan+UBSan, then the concurrent core (store, jobs, the council) under TSan,
# then a short libFuzzer run of the parsers of LLM provider output (FUZZ_SECONDS each).
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc)
step() { printf '\n=== %s ===\n' "$*"; }

step "format check"
mapfile -t sources < <(git ls-files '*.cpp' '*.hpp')
clang-format --dry-run -Werror "${sources[@]}"

step "release build + all tests"
cmake --preset release >/dev/null
cmake --build build/release -j "$jobs"
ctest --preset release -j "$jobs"

step "ASan+UBSan build + all tests"
cmake --preset asan >/dev/null
cmake --build build/asan -j "$jobs"
ctest --preset asan -j "$jobs"

step "TSan build + concurrent core tests"
cmake --preset tsan >/dev/null
cmake --build build/tsan -j "$jobs" --target store_test jobs_test events_test council_test conclave
ctest --preset tsan -j "$jobs" -R 'StoreContract|GroupCommit|EngineTest|Backoff|HubTest|CouncilJobTest'

step "libFuzzer: LLM stream and ranking parsers"
FUZZ_SECONDS="${FUZZ_SECONDS:-15}" scripts/fuzz.sh
